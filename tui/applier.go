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

// MemberManager is an optional capability of an Applier: the running
// cluster's membership beside the plan, and runtime member add and remove,
// as 'etcdctl-wizard member list|add|remove' do. Without it the wizard does
// not offer to manage a running cluster.
type MemberManager interface {
	// Members follows the membership: one MemberList right away, then one
	// every few seconds, until ctx is cancelled.
	Members(ctx context.Context, p *plan.Plan, planDir string) <-chan MemberList
	// AddMember adds m to the running cluster p describes, trusting the
	// accepted host keys (the new host's), and streams its progress like
	// Apply. save writes the plan that describes the cluster afterwards; it
	// is called once the cluster has changed.
	AddMember(ctx context.Context, p *plan.Plan, planDir string, m plan.Member, accepted []HostKey, save func(*plan.Plan) error) <-chan Event
	// RemoveMember removes the plan's member name from the running cluster
	// and cleans its host; it refuses what would put the quorum at risk.
	// save as for AddMember.
	RemoveMember(ctx context.Context, p *plan.Plan, planDir, name string, save func(*plan.Plan) error) <-chan Event
}

// MemberList is one observation of the running cluster's members beside
// the plan's.
type MemberList struct {
	Time      time.Time
	Cluster   string
	ClusterID string
	// PlanClusterID is the ID the plan holds (spec.clusterID when Pinned,
	// else the computed one).
	PlanClusterID string
	Pinned        bool
	Via           string // the member that answered
	Members       []MemberEntry
	// InSync: every member is in both, with the same peer URLs, no learner.
	InSync bool
	// Err is why the cluster could not be asked (then the rest is empty).
	Err error
}

// MemberEntry is a member of the running cluster, of the plan, or both.
type MemberEntry struct {
	Name       string // "" for a member added but never started
	ID         string
	PeerURLs   []string
	ClientURLs []string
	InPlan     bool
	InCluster  bool
	Learner    bool
	Leader     bool
	// Health is "healthy", "unhealthy: why", or "" when the wizard cannot
	// ask (the member is not in the plan).
	Health string
	// Note says what a difference means and what to do.
	Note string
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
