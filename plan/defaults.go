package plan

import (
	"path"
	"strings"
)

// Default values filled in by WithDefaults.
const (
	DefaultInstallPath = "/usr/local/bin/etcd-node"
	DefaultDataDir     = "/var/lib/etcd"
	DefaultClientPort  = 2379
	DefaultPeerPort    = 2380
	DefaultSSHPort     = 22
	DefaultSSHUser     = "root"
	DefaultPKIDir      = "/etc/etcd/pki"
)

// DefaultTLSFiles are the host paths used when spec.tls.files leaves a field
// empty: one cluster CA and, per member, a client-facing and a peer key pair,
// named like the guide's example.
var DefaultTLSFiles = TLSFiles{
	TrustedCA:     DefaultPKIDir + "/ca.crt",
	Cert:          DefaultPKIDir + "/{name}-client.crt",
	Key:           DefaultPKIDir + "/{name}-client.key",
	PeerTrustedCA: DefaultPKIDir + "/ca.crt",
	PeerCert:      DefaultPKIDir + "/{name}-peer.crt",
	PeerKey:       DefaultPKIDir + "/{name}-peer.key",
}

// WithDefaults returns a deep copy of p with every defaulted field filled in.
// p itself is left as written, so that Save round-trips what the user wrote.
func (p *Plan) WithDefaults() *Plan {
	q := p.clone()
	s := &q.Spec
	if q.APIVersion == "" {
		q.APIVersion = APIVersion
	}
	if q.Kind == "" {
		q.Kind = KindCluster
	}
	if s.InitialClusterToken == "" {
		s.InitialClusterToken = q.Metadata.Name
	}
	if s.Bootstrap.Mode == "" {
		s.Bootstrap.Mode = ModeStatic
	}
	if s.Bootstrap.Mode == ModeDNSSRV && s.Bootstrap.DNSSRV.Advertise == "" {
		s.Bootstrap.DNSSRV.Advertise = AdvertiseHostnames
	}
	if s.TLS.Mode == "" {
		s.TLS.Mode = TLSNone
	}
	fillTLSFiles(&s.TLS.Files)
	n := &s.Node
	if n.Binary == "" {
		n.Binary = BinaryBundled
	}
	if n.InstallPath == "" {
		n.InstallPath = DefaultInstallPath
		if n.Binary != BinaryBundled {
			// An operator-supplied binary keeps its own name on the host.
			if base := path.Base(strings.ReplaceAll(n.Binary, "\\", "/")); base != "." && base != "/" {
				n.InstallPath = "/usr/local/bin/" + base
			}
		}
	}
	if n.DataDir == nil {
		d := DefaultDataDir
		n.DataDir = &d
	}
	if n.ClientPort == 0 {
		n.ClientPort = DefaultClientPort
	}
	if n.PeerPort == 0 {
		n.PeerPort = DefaultPeerPort
	}
	if n.Listen == "" {
		n.Listen = ListenIPAndLoopback
	}
	for i := range s.Members {
		m := &s.Members[i]
		if m.ClientPort == 0 {
			m.ClientPort = n.ClientPort
		}
		if m.PeerPort == 0 {
			m.PeerPort = n.PeerPort
		}
		if m.Transport == "" {
			m.Transport = TransportSSH
		}
		if m.SSH.Host == "" {
			m.SSH.Host = m.IP
		}
		if m.SSH.Port == 0 {
			m.SSH.Port = DefaultSSHPort
		}
		if m.SSH.User == "" {
			m.SSH.User = DefaultSSHUser
		}
	}
	return q
}

func fillTLSFiles(f *TLSFiles) {
	d := DefaultTLSFiles
	for _, x := range []struct {
		dst *string
		def string
	}{
		{&f.TrustedCA, d.TrustedCA}, {&f.Cert, d.Cert}, {&f.Key, d.Key},
		{&f.PeerTrustedCA, d.PeerTrustedCA}, {&f.PeerCert, d.PeerCert}, {&f.PeerKey, d.PeerKey},
	} {
		if *x.dst == "" {
			*x.dst = x.def
		}
	}
}

// clone deep-copies p: the maps and slices are not shared.
// Clone returns a deep copy of p as written (no defaults filled in).
func (p *Plan) Clone() *Plan { return p.clone() }

func (p *Plan) clone() *Plan {
	q := *p
	if p.Spec.Node.DataDir != nil {
		d := *p.Spec.Node.DataDir
		q.Spec.Node.DataDir = &d
	}
	q.Spec.Node.Flags = cloneMap(p.Spec.Node.Flags)
	q.Spec.Members = make([]Member, len(p.Spec.Members))
	for i, m := range p.Spec.Members {
		m.Flags = cloneMap(m.Flags)
		q.Spec.Members[i] = m
	}
	if p.Spec.Members == nil {
		q.Spec.Members = nil
	}
	return &q
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Token is the effective --initial-cluster-token.
func (p *Plan) Token() string {
	if p.Spec.InitialClusterToken != "" {
		return p.Spec.InitialClusterToken
	}
	return p.Metadata.Name
}

// BinaryName is the command name printed in shell exports: the base name of
// the install path (etcd-node unless the plan names another binary).
func (p *Plan) BinaryName() string {
	return path.Base(p.WithDefaults().Spec.Node.InstallPath)
}
