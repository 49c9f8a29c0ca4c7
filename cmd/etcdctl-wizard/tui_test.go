package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
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
