package tui

import (
	"context"
	"time"

	"etcdctl-wizard/plan"
)

// Applier provisions a plan. The wizard's apply, host-key and done screens
// are written against it; tui/applier implements it over the remote package.
// Every channel is closed by the Applier when its work ends or ctx is
// cancelled.
type Applier interface {
	// HostKeys connects to every SSH host of the plan and reports the keys
	// that are not trusted yet (unknown) or refused (changed). Local members
	// have no host key.
	HostKeys(ctx context.Context, p *plan.Plan) ([]HostKey, error)
	// Apply provisions the plan, trusting the accepted host keys, and streams
	// its progress. planDir resolves the plan's relative paths (its TLS
	// folder). The last event has Final set; its Err says whether the run
	// failed.
	Apply(ctx context.Context, p *plan.Plan, planDir string, accepted []HostKey) <-chan Event
	// Status follows the cluster (members, leader, raft term and index,
	// health) until ctx is cancelled.
	Status(ctx context.Context, p *plan.Plan, planDir string) <-chan ClusterStatus
}

// LogTailer is an optional capability of an Applier: the last n lines of a
// member's own log on its host.
type LogTailer interface {
	LogTail(ctx context.Context, p *plan.Plan, planDir, member string, n int) ([]string, error)
}

// DiscoveryCreator is an optional capability of an Applier: a new etcd
// discovery token for size members, from a discovery service (an existing
// etcd-node cluster, or discovery.etcd.io), as its discovery URL.
type DiscoveryCreator interface {
	NewDiscoveryURL(ctx context.Context, service string, size int) (string, error)
}

// HostKey is one SSH host key that needs the operator's decision.
type HostKey struct {
	Member      string
	Host        string // as known_hosts records it: "10.0.1.10" or "[10.0.1.10]:2222"
	KeyType     string
	Fingerprint string // SHA256:...
	// Changed is a key different from the one in known_hosts: it is refused
	// and cannot be accepted here.
	Changed        bool
	OldFingerprint string
}

// StepState is where a host's step stands.
type StepState string

// Step states.
const (
	StepRunning StepState = "running"
	StepDone    StepState = "done"
	StepSkipped StepState = "skipped" // already done, nothing changed
	StepFailed  StepState = "failed"
)

// Event is one report of Apply.
type Event struct {
	Time  time.Time
	Host  string // member name; "" for the run as a whole
	Step  string // e.g. "facts", "upload binary", "start"
	State StepState
	// Progress is the fraction of an upload done, 0..1; negative when the
	// step has no measurable progress.
	Progress float64
	// Log lines the step printed (member logs on failure, command output).
	Log []string
	Err error
	// Final marks the last event of the run.
	Final bool
	// Ask, when set, is a question for the operator (a sudo password); the
	// run waits for the answer.
	Ask *Question
}

// Question asks the operator for a secret during an apply. Exactly one
// answer goes to Reply (buffered by the sender): the secret, or nil when the
// operator declines.
type Question struct {
	Prompt string
	Reply  chan<- []byte
}

// ClusterStatus is one observation of the running cluster.
type ClusterStatus struct {
	Time    time.Time
	Members []MemberStatus
	Leader  string // member name
	Term    uint64
	Index   uint64
	Err     error
}

// MemberStatus is one member as the cluster sees it.
type MemberStatus struct {
	Name     string
	Endpoint string
	Healthy  bool
	Version  string
	Err      string
}
