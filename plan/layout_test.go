package plan

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildForSupervisorAndLocal(t *testing.T) {
	p := mustLoad(t, filepath.Join(plansDir, "static.yaml"))
	plain, err := Build(p)
	if err != nil {
		t.Fatal(err)
	}
	if plain[0].Layout != nil {
		t.Error("Build (the dry run) carries a layout")
	}
	hps, err := BuildFor(p, func(m string) HostOptions {
		if m == "infra2" {
			return HostOptions{Service: ServiceSupervisor, Root: "/state/infra2"}
		}
		return HostOptions{Service: ServiceSupervisor}
	})
	if err != nil {
		t.Fatal(err)
	}
	h := hps[0]
	if l := h.Layout; l == nil || l.ServiceFile != SupervisorPath || l.PIDFile != PIDFilePath || l.DataDir != "/var/lib/etcd/infra0.etcd" ||
		l.ClientURLs[0] != "http://10.0.1.10:2379" || strings.Join(l.Listen, ",") != "10.0.1.10:2379,127.0.0.1:2379,10.0.1.10:2380" {
		t.Fatalf("infra0 layout %+v", h.Layout)
	}
	sup, ok := h.Step(StepSupervisor)
	if !ok || !strings.Contains(sup.Files[0].Content, "set -a\n. /etc/etcd/etcd-node.env") || sup.Files[0].Mode != 0o755 {
		t.Errorf("supervisor step %+v", sup)
	}
	if _, ok := h.Step(StepSystemdUnit); ok {
		t.Error("a supervisor host got a systemd unit")
	}
	start, _ := h.Step(StepStart)
	if !strings.Contains(start.Command, "setsid -f env -i") || !strings.Contains(start.Check, "/run/etcd-node.pid") {
		t.Errorf("start step %+v", start)
	}
	// Local: every file under the member's root.
	l := hps[2].Layout
	for _, p := range []string{l.InstallPath, l.EnvFile, l.ServiceFile, l.PIDFile, l.LogFile, l.DataDir} {
		if !strings.HasPrefix(p, "/state/infra2/") {
			t.Errorf("local path %s outside the member's root", p)
		}
	}
	dirs, _ := hps[2].Step(StepDirectories)
	if !strings.HasPrefix(dirs.Command, "install -d -m 0700 /state/infra2 &&") {
		t.Errorf("local directories: %s", dirs.Command)
	}
}
