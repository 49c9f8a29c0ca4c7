package tui

import (
	"fmt"
	"strings"

	"etcdctl-wizard/plan"
)

// sshHostColumn is the new member's SSH address, for a host reached under
// another address than the one it serves on; the hosts table leaves it to
// the plan file.
var sshHostColumn = hostColumn{"SSH host", "ssh.host", 15, 9, func(m *plan.Member) string { return m.SSH.Host },
	func(m *plan.Member, v string) error { m.SSH.Host = v; return nil }, "its IP"}

// memberForm is the new member of a member add: the hosts table's columns
// (with the same parsing and the same plan.Validate findings by field), and
// the SSH host.
type memberForm struct {
	form
	cols []hostColumn
	// problem is a finding of the grown plan that names no field of the
	// form.
	problem string
}

func newMemberForm() memberForm {
	var f memberForm
	for _, c := range hostColumns {
		f.cols = append(f.cols, c)
		if c.path == "hostname" {
			f.cols = append(f.cols, sshHostColumn)
		}
	}
	for i, c := range f.cols {
		label := c.title
		if i >= 2 {
			label += " (optional)"
		}
		x := &formField{id: c.path, label: label, input: newInput("")}
		if c.fallback != "" {
			x.note = "empty: " + c.fallback
		}
		f.fields = append(f.fields, x)
	}
	return f
}

// grow is p with the form's member appended as a joining member, checked
// the way executor.PlanWithMember checks it (which AddMember runs again):
// plan.Validate with a placeholder spec.clusterID, which only the running
// cluster knows. Every error finding goes to its field; ok is false when
// there is any.
func (f *memberForm) grow(p *plan.Plan) (grown *plan.Plan, ok bool) {
	f.problem = ""
	var mem plan.Member
	ok = true
	for i, c := range f.cols {
		x := f.fields[i]
		x.err = ""
		if err := c.set(&mem, x.value); err != nil {
			x.err, ok = err.Error(), false
		}
	}
	mem.Join = true
	grown = p.Clone()
	grown.Spec.Members = append(grown.Spec.Members, mem)
	probe := grown.Clone()
	if probe.Spec.ClusterID == "" {
		probe.Spec.ClusterID = "1"
	}
	prefix := fmt.Sprintf("spec.members[%d].", len(grown.Spec.Members)-1)
	var other []string
	for _, fd := range plan.Validate(probe) {
		if fd.Severity != plan.SeverityError {
			continue
		}
		ok = false
		if i := f.fieldOf(strings.TrimPrefix(fd.Field, prefix)); strings.HasPrefix(fd.Field, prefix) && i >= 0 {
			if f.fields[i].err == "" {
				f.fields[i].err = fd.Message
			}
			continue
		}
		other = append(other, fd.Message)
	}
	f.problem = strings.Join(other, "; ")
	return grown, ok
}

// fieldOf is the index of the field of a finding's path under the member.
func (f *memberForm) fieldOf(path string) int {
	for i, c := range f.cols {
		if c.path == path {
			return i
		}
	}
	return -1
}

func (f *memberForm) view(m *Model) string {
	var b strings.Builder
	b.WriteString("New member (enter/e edits a field, ctrl+s adds it, esc cancels):\n")
	b.WriteString(f.form.view(m))
	if f.problem != "" {
		b.WriteString(m.st.errText.Render("✗ "+f.problem) + "\n")
	}
	return b.String()
}
