package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"etcdctl-wizard/certs"
	"etcdctl-wizard/plan"
)

// planCerts is what a self-signed plan needs in its TLS dir: the CA under
// the trusted-CA base names its flags use, and per member the peer and
// client-port pairs with the SANs of the member's URLs.
type planCerts struct {
	file    string
	cluster string
	dir     string
	// caNames are the base names of --trusted-ca-file and
	// --peer-trusted-ca-file other than ca.crt (the guide uses
	// ca-client.crt and ca-peer.crt): copies of ca.crt.
	caNames []string
	targets []issueTarget
	members []string
}

// loadPlanCerts reads the plan and derives its certificates. dirFlag
// overrides spec.tls.dir.
func loadPlanCerts(stdin io.Reader, file, dirFlag string) (*planCerts, error) {
	p, err := loadPlan(stdin, file)
	if err != nil {
		return nil, err
	}
	q := p.WithDefaults()
	if q.Spec.TLS.Mode != plan.TLSSelfSigned {
		return nil, fmt.Errorf("%s: spec.tls.mode is %q: certificates are made for mode %q only", file, q.Spec.TLS.Mode, plan.TLSSelfSigned)
	}
	pc := &planCerts{file: file, cluster: q.Metadata.Name, dir: dirFlag}
	if pc.dir == "" && q.Spec.TLS.Dir != "" {
		// The plan's own path is relative to its folder; --dir, typed by
		// the operator, to the working directory.
		pc.dir = q.Spec.TLS.Dir
		if !filepath.IsAbs(pc.dir) {
			pc.dir = filepath.Join(planDir(file), pc.dir)
		}
	}
	if pc.dir == "" {
		return nil, fmt.Errorf("%s: spec.tls.dir is empty: set it or give --dir", file)
	}
	seenCA := map[string]bool{certs.CACertFile: true}
	for _, mc := range p.MemberConfigs() {
		pc.members = append(pc.members, mc.Name)
		get := func(flag string) string { v, _ := mc.Lookup(flag); return v }
		for _, flag := range []string{"trusted-ca-file", "peer-trusted-ca-file"} {
			if v := get(flag); v != "" {
				base := path.Base(v)
				if !strings.HasSuffix(base, ".crt") && !strings.HasSuffix(base, ".pem") {
					return nil, fmt.Errorf("member %s: --%s %q: name the CA file *.crt or *.pem", mc.Name, flag, v)
				}
				if !seenCA[base] {
					seenCA[base] = true
					pc.caNames = append(pc.caNames, base)
				}
			}
		}
		listenPeer, err := certs.HostsOfURLs(get("listen-peer-urls"))
		if err != nil {
			return nil, fmt.Errorf("member %s: --listen-peer-urls: %w", mc.Name, err)
		}
		advPeer, err := certs.HostsOfURLs(get("initial-advertise-peer-urls"))
		if err != nil {
			return nil, fmt.Errorf("member %s: --initial-advertise-peer-urls: %w", mc.Name, err)
		}
		listenClient, err := certs.HostsOfURLs(get("listen-client-urls"), get("listen-client-http-urls"))
		if err != nil {
			return nil, fmt.Errorf("member %s: --listen-client-urls: %w", mc.Name, err)
		}
		advClient, err := certs.HostsOfURLs(get("advertise-client-urls"))
		if err != nil {
			return nil, fmt.Errorf("member %s: --advertise-client-urls: %w", mc.Name, err)
		}
		// SPEC-etcd.md §6: with DNS SRV discovery and TLS the domain
		// must be a SAN of every member certificate.
		srv := get("discovery-srv")
		m := mc.Member
		peerIPs, peerDNS := certs.SANsForMember(m.IP, m.Hostname, listenPeer, advPeer, srv)
		srvIPs, srvDNS := certs.SANsForMember(m.IP, m.Hostname, listenClient, advClient, srv)
		for _, t := range []struct {
			certFlag, keyFlag string
			kind              certs.Kind
			label             string
		}{
			{"peer-cert-file", "peer-key-file", certs.KindPeer, "peer certificate for " + mc.Name},
			{"cert-file", "key-file", certs.KindServer, "client-port certificate for " + mc.Name},
		} {
			base, err := pairBase(mc.Name, t.certFlag, get(t.certFlag), t.keyFlag, get(t.keyFlag))
			if err != nil {
				return nil, err
			}
			req := certs.Request{Kind: t.kind, Name: mc.Name, IPs: peerIPs, DNSNames: peerDNS}
			if t.kind == certs.KindServer {
				req.IPs, req.DNSNames = srvIPs, srvDNS
			}
			pc.targets = append(pc.targets, issueTarget{base: base, label: t.label, req: req})
		}
	}
	return pc, nil
}

// pairBase is the common base name of a member's certificate and key files,
// which is how certs writes them.
func pairBase(member, certFlag, certPath, keyFlag, keyPath string) (string, error) {
	cb, kb := path.Base(certPath), path.Base(keyPath)
	base := strings.TrimSuffix(cb, ".crt")
	if certPath == "" || keyPath == "" || base == cb || kb != base+".key" {
		return "", fmt.Errorf("member %s: --%s %q and --%s %q: the wizard writes <base>.crt and <base>.key; name the files so in spec.tls.files",
			member, certFlag, certPath, keyFlag, keyPath)
	}
	if err := certs.ValidateName(base); err != nil || base == "ca" {
		return "", fmt.Errorf("member %s: --%s %q: unusable file name", member, certFlag, certPath)
	}
	return base, nil
}

// writeCACopies writes ca.crt under the other names the plan's flags use.
// Only the certificate is copied: ca.key stays where it is.
func writeCACopies(w io.Writer, ca *certs.CA, dir string, names []string) error {
	for _, n := range names {
		p := filepath.Join(dir, n)
		if b, err := os.ReadFile(p); err == nil && bytes.Equal(b, ca.CertPEM) {
			continue
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w", p, err)
		}
		tmp, err := os.CreateTemp(dir, "."+n+".tmp-*")
		if err != nil {
			return err
		}
		_, werr := tmp.Write(ca.CertPEM)
		cerr := tmp.Close()
		if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), certs.CertMode)); err != nil {
			_ = os.Remove(tmp.Name())
			return fmt.Errorf("%s: %w", p, err)
		}
		if err := os.Rename(tmp.Name(), p); err != nil {
			_ = os.Remove(tmp.Name())
			return fmt.Errorf("%s: %w", p, err)
		}
		if _, err := fmt.Fprintf(w, "wrote %s: a copy of %s, as the plan's trusted-CA flags name it\n", n, certs.CACertFile); err != nil {
			return err
		}
	}
	return nil
}

// filterTargets keeps the targets of one member when --member is given
// with -f.
func (pc *planCerts) filterTargets(member string) ([]issueTarget, error) {
	if member == "" {
		return pc.targets, nil
	}
	var out []issueTarget
	for _, t := range pc.targets {
		if t.req.Name == member {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--member %s is not in the plan (members: %s)", member, strings.Join(pc.members, ", "))
	}
	return out, nil
}

// addPlanProblems checks each member certificate of the plan against the
// SANs and usages the plan needs, and adds what ScanDir cannot know: SANs
// missing for the plan, and files the plan needs that are absent.
func addPlanProblems(rep *certs.DirReport, pc *planCerts, warn time.Duration) {
	caPath := filepath.Join(pc.dir, certs.CACertFile)
	for _, t := range pc.targets {
		crt, key := filepath.Join(pc.dir, t.base+".crt"), filepath.Join(pc.dir, t.base+".key")
		spec := certs.CheckSpec{Kind: t.req.Kind, IPs: t.req.IPs, DNSNames: t.req.DNSNames, WarnWithin: warn}
		idx := -1
		for i := range rep.Certs {
			if rep.Certs[i].File == crt {
				idx = i
			}
		}
		for _, p := range certs.Check(crt, key, caPath, spec) {
			switch {
			case p.Code == "san-missing":
				p.Message += ", which the plan needs"
				p.Fix = fmt.Sprintf("reissue it with `etcdctl-wizard certs issue -f %s --member %s --force`", pc.file, t.req.Name)
			case p.Code == "missing" && p.File == crt:
				p.Message = "the plan needs the " + t.label + " but it " + strings.TrimPrefix(p.Message, "certificate ")
				p.Fix = fmt.Sprintf("run `etcdctl-wizard certs issue -f %s`", pc.file)
			case p.Code == "usage" && idx >= 0 && rep.Certs[idx].Kind != t.req.Kind.String():
				// ScanDir guessed the kind from the name; the plan
				// knows better.
				rep.Certs[idx].ChainOK = false
			default:
				continue
			}
			if idx >= 0 {
				rep.Certs[idx].Problems = append(rep.Certs[idx].Problems, p)
			} else {
				rep.Problems = append(rep.Problems, p)
			}
		}
	}
}
