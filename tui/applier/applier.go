// Package applier implements tui.Applier over remote/executor (apply),
// remote/follow (cluster status) and the SSH transport's known_hosts checks
// (host keys), so the wizard provisions through the same code as
// 'etcdctl-wizard apply'.
package applier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote"
	"etcdctl-wizard/remote/discoverytoken"
	"etcdctl-wizard/remote/executor"
	"etcdctl-wizard/remote/follow"
	"etcdctl-wizard/tui"
)

// Config is what the adapter needs from the command line.
type Config struct {
	// StateDir holds the apply journal and the sandbox members' files.
	StateDir string
	// KnownHosts is the known_hosts file; accepted keys are appended to it.
	KnownHosts string
	// SSHConfig is the ssh config file ("" ~/.ssh/config, "none").
	SSHConfig string
	// ConnectTimeout bounds each SSH connect and login; 0 means 15 s.
	ConnectTimeout time.Duration
	// NodeBinary finds the bundled etcd-node for a linux GOARCH.
	NodeBinary func(arch string) (string, error)
	// StatusInterval is how often the cluster is asked; 0 means 1 s.
	StatusInterval time.Duration
	// MembersInterval is how often the membership is listed (each time
	// through new connections to the hosts, as 'member list'); 0 means 2 s.
	MembersInterval time.Duration
	// StepTimeout and HealthTimeout are the executor's (0: its defaults).
	StepTimeout, HealthTimeout time.Duration
}

// Applier is a tui.Applier.
type Applier struct {
	cfg Config

	mu    sync.Mutex
	askMu sync.Mutex
	// secrets are the sudo passwords the operator gave, by target, kept in
	// memory for the wizard's life so that status, logs and a second apply
	// do not ask again.
	secrets map[string][]byte
}

var (
	_ tui.Applier          = (*Applier)(nil)
	_ tui.LogTailer        = (*Applier)(nil)
	_ tui.DiscoveryCreator = (*Applier)(nil)
	_ tui.MemberManager    = (*Applier)(nil)
)

// New returns the adapter.
func New(cfg Config) *Applier {
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	if cfg.StatusInterval == 0 {
		cfg.StatusInterval = time.Second
	}
	if cfg.MembersInterval == 0 {
		cfg.MembersInterval = 2 * time.Second
	}
	return &Applier{cfg: cfg, secrets: map[string][]byte{}}
}

// remembered answers from the secrets given before (by prompt: "sudo
// password for TARGET", "passphrase of KEYFILE"); ask, when not nil, puts the
// question to the operator otherwise.
func (a *Applier) remembered(ask askFunc) func(member, prompt string) ([]byte, error) {
	return func(member, prompt string) ([]byte, error) {
		// Copies out and in: the transport wipes a secret after use.
		a.mu.Lock()
		secret, ok := a.secrets[prompt]
		a.mu.Unlock()
		if ok {
			return bytes.Clone(secret), nil
		}
		if ask == nil {
			return nil, fmt.Errorf("%s: not given yet", prompt)
		}
		secret, err := ask(member, prompt)
		if err != nil {
			return nil, err
		}
		a.mu.Lock()
		a.secrets[prompt] = bytes.Clone(secret)
		a.mu.Unlock()
		return secret, nil
	}
}

// askFunc puts a question to the operator; nil asks nothing (only the
// passwords given before are used).
type askFunc func(member, prompt string) ([]byte, error)

// connect opens a host's transport the way 'apply' does, except that
// nothing is asked on the terminal (the wizard owns it): unknown host keys
// are trusted only when accepted on the host-key screen, and a sudo password
// is asked through ask (without ask, sudo must work without a password).
func (a *Applier) connect(kh *remote.KnownHosts, ask askFunc) executor.ConnectFunc {
	return func(ctx context.Context, h plan.HostPlan) (remote.Transport, error) {
		if h.Target.Transport == plan.TransportLocal {
			return remote.NewLocal(remote.LocalOptions{Name: h.Member, Sudo: true}), nil
		}
		return remote.DialSSH(ctx, a.sshOptions(h, kh, ask))
	}
}

// sshOptions are a host's SSH options; secrets come from ask (see connect).
func (a *Applier) sshOptions(h plan.HostPlan, kh *remote.KnownHosts, ask askFunc) remote.SSHOptions {
	so := remote.SSHOptions{Name: h.Member, Host: h.Target.Host, Port: h.Target.Port, User: h.Target.User,
		JumpHost: h.Target.JumpHost, KnownHosts: kh, ConnectTimeout: a.cfg.ConnectTimeout, ConfigFile: a.cfg.SSHConfig}
	if h.Target.KeyFile != "" {
		so.KeyFiles = []string{h.Target.KeyFile}
	}
	member, answer := h.Member, a.remembered(ask)
	so.SudoPassword = func(target string) ([]byte, error) { return answer(member, "sudo password for "+target) }
	so.Passphrase = func(keyFile string) ([]byte, error) { return answer(member, "passphrase of "+keyFile) }
	return so
}

func (a *Applier) options(planDir string, kh *remote.KnownHosts) executor.Options {
	return executor.Options{Connect: a.connect(kh, nil), NodeBinary: a.cfg.NodeBinary, BaseDir: planDir, StateDir: a.cfg.StateDir,
		StepTimeout: a.cfg.StepTimeout, HealthTimeout: a.cfg.HealthTimeout}
}

// HostKeys implements tui.Applier: it connects to every SSH host with a
// known_hosts check that records unknown keys and refuses them, so nothing
// is trusted before the operator decides.
func (a *Applier) HostKeys(ctx context.Context, p *plan.Plan) ([]tui.HostKey, error) {
	hosts, err := plan.Build(p)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var keys []tui.HostKey
	var errs []error
	var wg sync.WaitGroup
	for _, h := range hosts {
		if h.Target.Transport == plan.TransportLocal {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seen *remote.HostKey
			kh := &remote.KnownHosts{Path: a.cfg.KnownHosts, Confirm: func(k remote.HostKey) (bool, error) {
				seen = &k
				return false, nil
			}}
			so := a.sshOptions(h, kh, nil)
			// A passphrase is asked only once the host key passed: the
			// scan stops there, the apply asks for it.
			keyOK := false
			so.Passphrase = func(string) ([]byte, error) {
				keyOK = true
				return nil, errors.New("host key checked")
			}
			t, err := remote.DialSSH(ctx, so)
			mu.Lock()
			defer mu.Unlock()
			var changed *remote.HostKeyChangedError
			switch {
			case err == nil:
				t.Close()
			case keyOK:
			case seen != nil:
				keys = append(keys, tui.HostKey{Member: h.Member, Host: seen.Host, KeyType: seen.Type, Fingerprint: seen.Fingerprint})
			case errors.As(err, &changed):
				keys = append(keys, tui.HostKey{Member: h.Member, Host: changed.Host, Fingerprint: changed.Presented,
					Changed: true, OldFingerprint: strings.Join(changed.Known, ", ")})
			default:
				errs = append(errs, fmt.Errorf("%s: %w", h.Member, err))
			}
		}()
	}
	wg.Wait()
	sortKeys(keys, hosts)
	return keys, errors.Join(errs...)
}

// sortKeys puts the keys in plan order.
func sortKeys(keys []tui.HostKey, hosts []plan.HostPlan) {
	order := map[string]int{}
	for i, h := range hosts {
		order[h.Member] = i
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && order[keys[j].Member] < order[keys[j-1].Member]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
}

// Apply implements tui.Applier over executor.Apply.
func (a *Applier) Apply(ctx context.Context, p *plan.Plan, planDir string, accepted []tui.HostKey) <-chan tui.Event {
	return a.run(ctx, planDir, accepted, func(opts executor.Options) error {
		_, err := executor.Apply(ctx, p, opts)
		return err
	})
}

// run runs one executor operation with the wizard's options: the accepted
// host keys trusted, questions (sudo passwords, key passphrases) put to the
// operator as events, the executor's events converted, and a final event
// with the operation's error. The channel closes after the final event.
func (a *Applier) run(ctx context.Context, planDir string, accepted []tui.HostKey, op func(executor.Options) error) <-chan tui.Event {
	pins := map[string]string{}
	for _, k := range accepted {
		pins[k.Host] = k.Fingerprint
	}
	kh := &remote.KnownHosts{Path: a.cfg.KnownHosts, Confirm: remote.AcceptFingerprints(pins, nil)}
	opts := a.options(planDir, kh)
	ch := make(chan tui.Event, 64)
	opts.Connect = a.connect(kh, func(member, prompt string) ([]byte, error) {
		// One question at a time: hosts dial in parallel, the operator
		// answers in turn, and a second host asking the same is answered
		// from the first answer.
		a.askMu.Lock()
		defer a.askMu.Unlock()
		a.mu.Lock()
		secret, ok := a.secrets[prompt]
		a.mu.Unlock()
		if ok {
			return bytes.Clone(secret), nil
		}
		reply := make(chan []byte, 1)
		select {
		case ch <- tui.Event{Time: time.Now(), Host: member, Ask: &tui.Question{Prompt: prompt, Reply: reply}}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		select {
		case secret := <-reply:
			if secret == nil {
				return nil, fmt.Errorf("%s: declined", prompt)
			}
			return secret, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	opts.Events = func(ev executor.Event) {
		out, droppable := convert(ev)
		if droppable {
			// Upload progress comes in bursts: when the wizard is behind,
			// the next report will do.
			select {
			case ch <- out:
			default:
			}
			return
		}
		select {
		case ch <- out:
		case <-ctx.Done():
		}
	}
	go func() {
		defer close(ch)
		err := op(opts)
		ev := tui.Event{Time: time.Now(), Final: true, Err: err}
		var pe *executor.PreflightError
		if errors.As(err, &pe) {
			for _, pr := range pe.Problems {
				if pr.Fatal && ev.Host == "" {
					ev.Host, ev.Step = pr.Host, executor.StepPreflight
				}
			}
		}
		select {
		case ch <- ev:
		case <-ctx.Done():
			// The wizard may still be listening (a cancel it asked for).
			select {
			case ch <- ev:
			case <-time.After(time.Second):
			}
		}
	}()
	return ch
}

// convert maps an executor event; droppable marks upload progress.
func convert(ev executor.Event) (tui.Event, bool) {
	out := tui.Event{Time: ev.Time, Host: ev.Host, Step: ev.Step, Progress: -1}
	switch ev.State {
	case executor.StateRunning:
		out.State = tui.StepRunning
	case executor.StateProgress:
		out.State = tui.StepRunning
		if ev.Progress != nil && ev.Progress.Total > 0 {
			out.Progress = float64(ev.Progress.Done) / float64(ev.Progress.Total)
		}
	case executor.StateDone:
		out.State = tui.StepDone
	case executor.StateSkipped:
		out.State = tui.StepSkipped
	case executor.StateFailed:
		out.State = tui.StepFailed
		out.Err = errors.New(ev.Err)
	case executor.StateWarning, executor.StateInfo:
		// Not a step state: keep the row's state, log the message.
		out.Step = ""
		msg := ev.Message
		if ev.Err != "" {
			msg = strings.TrimSpace(msg + " " + ev.Err)
		}
		out.Log = append(out.Log, ev.State+": "+ev.Step+": "+msg)
		return out, false
	}
	if ev.Message != "" {
		out.Log = append(out.Log, ev.Step+": "+ev.Message)
	}
	if ev.Err != "" {
		out.Log = append(out.Log, strings.Split(ev.Err, "\n")...)
	}
	return out, ev.State == executor.StateProgress
}

// Status implements tui.Applier: it opens the hosts (again, once they
// answer) and follows the members' status through their transports.
func (a *Applier) Status(ctx context.Context, p *plan.Plan, planDir string) <-chan tui.ClusterStatus {
	ch := make(chan tui.ClusterStatus)
	go func() {
		defer close(ch)
		send := func(st tui.ClusterStatus) bool {
			select {
			case ch <- st:
				return true
			case <-ctx.Done():
				return false
			}
		}
		tlsCfg, err := executor.ClientTLS(p, planDir)
		if err != nil {
			send(tui.ClusterStatus{Time: time.Now(), Err: err})
			return
		}
		// Only keys already in known_hosts: Status never trusts a new one.
		// While the apply runs, hosts become reachable one by one (their
		// keys recorded, their members started): the hosts are opened
		// again until every one answers, then followed.
		kh := &remote.KnownHosts{Path: a.cfg.KnownHosts}
		for {
			hosts, err := executor.Open(ctx, p, a.options(planDir, kh))
			if err != nil {
				if ctx.Err() != nil || !send(tui.ClusterStatus{Time: time.Now(), Err: fmt.Errorf("waiting for the hosts: %w", err)}) {
					return
				}
			} else {
				eps := hosts.Endpoints()
				complete := true
				for _, ep := range eps {
					if ep.Transport == nil {
						complete = false
					}
				}
				if complete {
					defer hosts.Close()
					for st := range follow.Follow(ctx, eps, tlsCfg, a.cfg.StatusInterval) {
						if !send(convertStatus(st)) {
							return
						}
					}
					return
				}
				st := convertStatus(follow.Status(ctx, eps, tlsCfg))
				hosts.Close()
				if !send(st) {
					return
				}
			}
			select {
			case <-time.After(a.cfg.StatusInterval):
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// LogTail implements tui.LogTailer: the member's log on its host, as
// 'etcdctl-wizard logs' prints it.
func (a *Applier) LogTail(ctx context.Context, p *plan.Plan, planDir, member string, n int) ([]string, error) {
	hosts, err := executor.Open(ctx, p, a.options(planDir, &remote.KnownHosts{Path: a.cfg.KnownHosts}))
	if err != nil {
		return nil, err
	}
	defer hosts.Close()
	for _, h := range hosts.Hosts {
		if h.Plan.Member != member {
			continue
		}
		if h.Transport == nil || h.Plan.Layout == nil {
			return nil, fmt.Errorf("%s is not reachable", member)
		}
		var out bytes.Buffer
		if err := follow.Tail(ctx, h.Transport, h.Plan.Layout, n, false, &out); err != nil {
			return nil, err
		}
		return strings.Split(strings.TrimRight(out.String(), "\n"), "\n"), nil
	}
	return nil, fmt.Errorf("no member %s in the plan", member)
}

// NewDiscoveryURL implements tui.DiscoveryCreator with the discovery
// service protocol of discovery.etcd.io, which etcd-node's client port
// serves too: GET <service>/new?size=N answers the new token's URL.
func (a *Applier) NewDiscoveryURL(ctx context.Context, service string, size int) (string, error) {
	return discoverytoken.New(ctx, nil, service, size)
}

func convertStatus(st follow.ClusterStatus) tui.ClusterStatus {
	out := tui.ClusterStatus{Time: st.Time, Leader: st.Leader, Term: st.Term, Index: st.Index}
	for _, m := range st.Members {
		out.Members = append(out.Members, tui.MemberStatus{Name: m.Name, Endpoint: m.URL, Healthy: m.Healthy, Version: m.Version, Err: m.Err})
	}
	return out
}
