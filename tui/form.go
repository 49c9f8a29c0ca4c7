package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
)

// option is one value of a choice field.
type option struct{ value, label, desc string }

// formField is a choice (←/→ cycle its options, all shown with their
// explanation) or a text field (enter edits, enter/tab/esc leave).
type formField struct {
	id      string
	label   string
	options []option // nil for a text field
	value   string
	hidden  bool
	err     string // the validation finding of the field, kept until fixed
	note    string // a line under the field, shown when it has the focus
	status  bool   // the note is a state (shown always), not a help text
	input   textinput.Model
}

func (f *formField) isChoice() bool { return f.options != nil }

func (f *formField) optionIndex() int {
	for i, o := range f.options {
		if o.value == f.value {
			return i
		}
	}
	return 0
}

// form is a vertical list of fields.
type form struct {
	fields  []*formField
	focus   int
	editing bool
}

func newInput(value string) textinput.Model {
	ti := textinput.New()
	ti.Prompt = ""
	ti.CharLimit = 512
	ti.Cursor.SetMode(cursor.CursorStatic)
	ti.SetValue(value)
	return ti
}

func (f *form) field(id string) *formField {
	for _, x := range f.fields {
		if x.id == id {
			return x
		}
	}
	panic("tui: no form field " + id)
}

func (f *form) focused() *formField {
	if f.focus < 0 || f.focus >= len(f.fields) {
		return nil
	}
	return f.fields[f.focus]
}

// move focuses the next visible field in direction d.
func (f *form) move(d int) {
	for i := f.focus + d; i >= 0 && i < len(f.fields); i += d {
		if !f.fields[i].hidden {
			f.focus = i
			return
		}
	}
}

// fixFocus moves the focus off a field that became hidden.
func (f *form) fixFocus() {
	if x := f.focused(); x != nil && !x.hidden {
		return
	}
	old := f.focus
	f.move(-1)
	if f.focus == old {
		f.move(1)
	}
}

// formResult says what a key did to the form.
type formResult struct {
	changed   *formField // a choice changed, or a text field was committed
	handled   bool
	cancelled bool
}

func (f *form) update(k keyMap, msg tea.KeyMsg) formResult {
	x := f.focused()
	if x == nil {
		return formResult{}
	}
	if f.editing {
		switch {
		case msg.Type == tea.KeyEnter, msg.Type == tea.KeyTab, msg.Type == tea.KeyShiftTab, msg.Type == tea.KeyUp, msg.Type == tea.KeyDown:
			f.editing = false
			x.input.Blur()
			x.value = strings.TrimSpace(x.input.Value())
			switch msg.Type {
			case tea.KeyTab, tea.KeyDown:
				f.move(1)
			case tea.KeyShiftTab, tea.KeyUp:
				f.move(-1)
			}
			return formResult{changed: x, handled: true}
		case msg.Type == tea.KeyEsc:
			f.editing = false
			x.input.Blur()
			x.input.SetValue(x.value)
			return formResult{handled: true, cancelled: true}
		}
		x.input, _ = x.input.Update(msg)
		return formResult{handled: true}
	}
	switch {
	case key.Matches(msg, k.Up, k.ShiftTab):
		f.move(-1)
		return formResult{handled: true}
	case key.Matches(msg, k.Down, k.Tab):
		f.move(1)
		return formResult{handled: true}
	}
	if x.isChoice() {
		i := x.optionIndex()
		switch {
		case key.Matches(msg, k.Left):
			i = (i + len(x.options) - 1) % len(x.options)
		case key.Matches(msg, k.Right), msg.String() == " ":
			i = (i + 1) % len(x.options)
		default:
			return formResult{}
		}
		x.value = x.options[i].value
		return formResult{changed: x, handled: true}
	}
	if key.Matches(msg, k.Edit) {
		f.editing = true
		x.input.SetValue(x.value)
		x.input.CursorEnd()
		x.input.Focus()
		return formResult{handled: true}
	}
	return formResult{}
}

func (f *form) view(m *Model) string {
	var b strings.Builder
	labelW := 0
	for _, x := range f.fields {
		if !x.hidden && len(x.label) > labelW {
			labelW = len(x.label)
		}
	}
	for i, x := range f.fields {
		if x.hidden {
			continue
		}
		mark := "  "
		if i == f.focus {
			mark = m.st.selected.Render("> ")
		}
		label := fmt.Sprintf("%-*s", labelW, x.label)
		if i == f.focus {
			label = m.st.selected.Render(label)
		}
		if x.isChoice() {
			fmt.Fprintf(&b, "%s%s\n", mark, label)
			optW := 0
			for _, o := range x.options {
				optW = max(optW, len(o.label))
			}
			for _, o := range x.options {
				radio := "( )"
				text := fmt.Sprintf("%s %-*s  %s", radio, optW, o.label, o.desc)
				if o.value == x.value {
					text = m.st.selected.Render(fmt.Sprintf("(•) %-*s", optW, o.label)) + "  " + o.desc
				} else {
					text = m.st.faint.Render(text)
				}
				fmt.Fprintf(&b, "      %s\n", text)
			}
		} else {
			val := x.value
			switch {
			case f.editing && i == f.focus:
				val = "[" + x.input.View() + "]"
			case val == "":
				val = m.st.faint.Render("(empty)")
			}
			fmt.Fprintf(&b, "%s%s  %s\n", mark, label, val)
		}
		if x.err != "" {
			fmt.Fprintf(&b, "    %s\n", m.st.errText.Render("✗ "+x.err))
		}
		// Notes explain the focused field only: small windows stay legible.
		if x.note != "" && (i == f.focus || x.isChoice() || x.status) {
			for _, l := range strings.Split(x.note, "\n") {
				fmt.Fprintf(&b, "    %s\n", m.st.faint.Render(l))
			}
		}
	}
	return b.String()
}
