package plan

import (
	"fmt"
	"path/filepath"
	"strings"

	"etcdctl-wizard/certs"
)

// Finding codes of the certificate check.
const (
	CodeCertProblem     = "certificate-problem"
	CodeCertExpiresSoon = "certificate-expires-soon"
)

// ValidateCertificates checks, for a self-signed plan, the certificates in
// spec.tls.dir on this machine: every member's peer and client-port pair
// exists, parses, matches its key, chains to the cluster CA for the right
// usages, covers the addresses the member listens and advertises on (and
// the SRV domain in dns-srv mode), and is not expired or about to expire.
// A relative tls.dir is taken relative to planDir (the plan file's folder).
// Unlike Validate it reads files, so it is separate; the CLI runs both.
func ValidateCertificates(p *Plan, planDir string) []Finding {
	q := p.WithDefaults()
	if q.Spec.TLS.Mode != TLSSelfSigned || q.Spec.TLS.Dir == "" {
		return nil
	}
	dir := q.Spec.TLS.Dir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(planDir, dir)
	}
	var out []Finding
	for _, mc := range q.MemberConfigs() {
		files := q.Spec.TLS.Files.forMember(mc.Name)
		srv := ""
		if q.Spec.Bootstrap.Mode == ModeDNSSRV {
			srv = q.Spec.Bootstrap.DNSSRV.Domain
		}
		for _, side := range []struct {
			kind                certs.Kind
			cert, key, ca       string
			listenFlag, advFlag string
			field               string
		}{
			{certs.KindPeer, files.PeerCert, files.PeerKey, files.PeerTrustedCA, "listen-peer-urls", "initial-advertise-peer-urls", "spec.tls.files.peerCert"},
			{certs.KindServer, files.Cert, files.Key, files.TrustedCA, "listen-client-urls", "advertise-client-urls", "spec.tls.files.cert"},
		} {
			listen, _ := mc.Lookup(side.listenFlag)
			adv, _ := mc.Lookup(side.advFlag)
			listenHosts, _ := certs.HostsOfURLs(listen)
			advHosts, _ := certs.HostsOfURLs(adv)
			ips, dns := certs.SANsForMember(mc.Member.IP, mc.Member.Hostname, listenHosts, advHosts, srv)
			// On this machine the files keep the base names of their host
			// paths (what apply uploads); the trusted CA files are copies of
			// the cluster CA that `certs issue -f PLAN` writes.
			local := func(hostPath string) string { return filepath.Join(dir, filepath.Base(hostPath)) }
			caPath := local(side.ca)
			problems := certs.Check(local(side.cert), local(side.key), caPath, certs.CheckSpec{Kind: side.kind, IPs: ips, DNSNames: dns})
			for _, pr := range problems {
				f := Finding{Code: CodeCertProblem, Severity: SeverityError, Member: mc.Name, Field: side.field,
					Message: mc.Name + ": " + pr.Message + " (" + pr.File + ")", Hint: pr.Fix}
				if pr.Severity == certs.SeverityWarning {
					f.Severity, f.Code = SeverityWarning, CodeCertExpiresSoon
				}
				switch {
				case pr.Code == "missing" && pr.File == caPath:
					f.Hint = fmt.Sprintf("create the cluster CA and the member certificates with: etcdctl-wizard certs init --dir %s --name %s && etcdctl-wizard certs issue -f PLAN", dir, q.Metadata.Name)
				case pr.Code == "missing":
					f.Hint = fmt.Sprintf("issue it with: etcdctl-wizard certs issue --dir %s --member %s --ip %s%s",
						dir, mc.Name, mc.Member.IP, hostnameArg(mc.Member.Hostname))
				}
				out = append(out, f)
			}
		}
	}
	return dedupeFindings(out)
}

func hostnameArg(h string) string {
	if h == "" {
		return ""
	}
	return " --hostname " + h
}

// dedupeFindings drops repeats (the CA file is checked once per pair).
func dedupeFindings(fs []Finding) []Finding {
	seen := map[string]bool{}
	var out []Finding
	for _, f := range fs {
		k := strings.Join([]string{f.Code, f.Member, f.Message}, "\x00")
		if !seen[k] {
			seen[k] = true
			out = append(out, f)
		}
	}
	return out
}
