package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"etcdctl-wizard/plan"
)

// Without a terminal the root command explains itself instead of opening
// the wizard (which would fail on /dev/tty).
func TestRootWithoutTerminal(t *testing.T) {
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	for _, c := range []struct {
		name string
		args []string
		in   any
	}{
		{"pipe", nil, strings.NewReader("")},
		{"dev null", nil, devNull},
		{"with a plan", []string{"-f", "plan.yaml"}, strings.NewReader("")},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			in := c.in.(interface{ Read([]byte) (int, error) })
			if code := run(c.args, in, &out, &errb); code != 1 {
				t.Fatalf("exit %d, stderr %s", code, errb.String())
			}
			if out.Len() != 0 || !strings.Contains(errb.String(), "the wizard needs a terminal") ||
				!strings.Contains(errb.String(), "etcdctl-wizard plan validate -f PLAN") {
				t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
			}
		})
	}
}

// The wizard's certificate key issues what the plan's validation asks for.
func TestWizardIssueCertificates(t *testing.T) {
	dir := t.TempDir()
	p, err := plan.Load(filepath.Join(plans, "static.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p.Spec.TLS = plan.TLS{Mode: plan.TLSSelfSigned, Dir: "pki"}
	path := filepath.Join(dir, "plan.yaml")
	if err := plan.Save(path, p); err != nil {
		t.Fatal(err)
	}
	if fs := plan.ValidateCertificates(p, dir); !plan.HasErrors(fs) {
		t.Fatalf("no certificates yet, but no findings: %+v", fs)
	}
	report, err := issueCertificates(path, filepath.Join(dir, "pki"))
	if err != nil || !strings.Contains(report, "created CA") || !strings.Contains(report, "infra2-peer.crt") {
		t.Fatalf("%v\n%s", err, report)
	}
	if fs := plan.ValidateCertificates(p, dir); plan.HasErrors(fs) {
		t.Fatalf("findings after issuing: %+v", fs)
	}
	// Again: the CA and the certificates are reused.
	if report, err = issueCertificates(path, filepath.Join(dir, "pki")); err != nil || strings.Contains(report, "created CA") {
		t.Fatalf("%v\n%s", err, report)
	}
}
