package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"etcdctl-wizard/certs"

	"github.com/spf13/cobra"
)

func newCertsCmd() *cobra.Command {
	return newGroupCmd("certs", "Create the cluster CA, issue and check certificates",
		`certs manages the cluster's PKI on this machine: one CA per cluster (ca.crt, ca.key),
per member a peer certificate (<member>-peer.crt) and a client-port certificate
(<member>-client.crt, named as in etcd's clustering guide), and client certificates for
the wizard and for etcdctl (<name>.crt). ca.key never leaves this machine.`,
		newCertsInitCmd(), newCertsIssueCmd(), newCertsCheckCmd())
}

// certsInitOptions are the flags of certs init.
type certsInitOptions struct {
	dir      string
	name     string
	validity string
}

func newCertsInitCmd() *cobra.Command {
	var o certsInitOptions
	cmd := &cobra.Command{
		Use:   "init --dir DIR [--name CLUSTER]",
		Short: "Create the cluster CA, or reuse the one in DIR",
		Long: `init creates ca.crt and ca.key in DIR (mode 0700; the key 0600) with an ECDSA P-256 key.
When DIR already holds a CA it is checked and reused; it is never overwritten.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCertsInit(cmd.OutOrStdout(), o)
		},
	}
	cmd.Flags().StringVar(&o.dir, "dir", "", "certificate directory on this machine")
	cmd.Flags().StringVar(&o.name, "name", "etcd-cluster", "cluster name, used in the CA's common name")
	cmd.Flags().StringVar(&o.validity, "validity", "5y", "CA validity: a Go duration or a number of days (d) or years (y)")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

func runCertsInit(w io.Writer, o certsInitOptions) error {
	validity, err := certsParseValidity("--validity", o.validity)
	if err != nil {
		return err
	}
	ca, created, err := certs.LoadOrCreateCA(o.dir, certs.CAOptions{Name: o.name, Validity: validity})
	if err != nil {
		return err
	}
	until := fmt.Sprintf("valid until %s (%s)", certsDay(ca.Cert.NotAfter), certsDaysFromNow(ca.Cert.NotAfter))
	if created {
		_, err = fmt.Fprintf(w, "created CA %q in %s: %s, %s (private)\n%s\nkeep %s on this machine: only %s goes to the hosts\n",
			ca.Cert.Subject.CommonName, o.dir, certs.CACertFile, certs.CAKeyFile, until, certs.CAKeyFile, certs.CACertFile)
		return err
	}
	_, err = fmt.Fprintf(w, "reusing CA %q in %s, %s\n", ca.Cert.Subject.CommonName, o.dir, until)
	return err
}

// certsIssueOptions are the flags of certs issue.
type certsIssueOptions struct {
	dir       string
	member    string
	client    string
	ip        string
	hostname  string
	sans      []string
	srvDomain string
	loopback  bool
	validity  string
	force     bool
	file      string
}

func newCertsIssueCmd() *cobra.Command {
	var o certsIssueOptions
	cmd := &cobra.Command{
		Use:   "issue --dir DIR (--member NAME --ip IP [--hostname H] [--san S]... | --client NAME | -f PLAN [--member NAME])",
		Short: "Issue a member's peer and client-port certificates, or a client certificate",
		Long: `issue signs certificates with the CA in DIR (create it with certs init).

With --member it writes <member>-peer.crt/.key (--peer-cert-file, server and client auth)
and <member>-client.crt/.key (--cert-file for the client port, server and client auth, as
in etcd's guide). Their SANs are the member's IP and host name, every --san, the SRV
domain with --srv-domain (DNS SRV discovery with TLS needs it), and on the client-port
certificate 127.0.0.1 and localhost unless --loopback=false.

With --client it writes <name>.crt/.key with client auth only, for etcdctl
(--cacert ca.crt --cert <name>.crt --key <name>.key) or the wizard.

With -f PLAN (spec.tls.mode self-signed) it creates the CA in spec.tls.dir if needed and
issues every member's pair (or only --member's) under the base names of the plan's
certificate flags, with the SANs of the member's listen and advertise URLs, its host
name and, in DNS SRV mode, the SRV domain; ca.crt is also copied under the plan's
trusted-CA file names.

Existing files that are valid for the request are kept; others are replaced only with
--force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCertsIssue(cmd.InOrStdin(), cmd.OutOrStdout(), o, cmd.Flags().Changed)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", "", "certificate directory holding the CA (default with -f: spec.tls.dir)")
	f.StringVarP(&o.file, "file", "f", "", "plan file (- for stdin): issue what its members need")
	f.StringVar(&o.member, "member", "", "member name (the certificates' common name)")
	f.StringVar(&o.client, "client", "", "client name (the certificate's common name; etcd's RBAC user)")
	f.StringVar(&o.ip, "ip", "", "the member's IP address")
	f.StringVar(&o.hostname, "hostname", "", "the member's host name")
	f.StringSliceVar(&o.sans, "san", nil, "extra IP address or DNS name (repeatable, comma-separated)")
	f.StringVar(&o.srvDomain, "srv-domain", "", "DNS SRV discovery domain (--discovery-srv), added to the SANs")
	f.BoolVar(&o.loopback, "loopback", true, "add 127.0.0.1 and localhost to the client-port certificate")
	f.StringVar(&o.validity, "validity", "1y", "certificate validity (never beyond the CA's): a Go duration or days (d) or years (y)")
	f.BoolVar(&o.force, "force", false, "replace existing certificates even when they are still valid")
	return cmd
}

// issueTarget is one certificate to write.
type issueTarget struct {
	base  string
	label string
	req   certs.Request
}

func runCertsIssue(stdin io.Reader, w io.Writer, o certsIssueOptions, changed func(string) bool) error {
	validity, err := certsParseValidity("--validity", o.validity)
	if err != nil {
		return err
	}
	var targets []issueTarget
	var ca *certs.CA
	if o.file != "" {
		for _, f := range []string{"ip", "hostname", "san", "srv-domain", "loopback"} {
			if changed(f) {
				return fmt.Errorf("--%s cannot be used with -f: the plan decides the SANs", f)
			}
		}
		pc, err := loadPlanCerts(stdin, o.file, o.dir)
		if err != nil {
			return err
		}
		o.dir = pc.dir
		if o.client != "" {
			if targets, err = issueTargets(o, changed); err != nil {
				return err
			}
		} else if targets, err = pc.filterTargets(o.member); err != nil {
			return err
		}
		var created bool
		if ca, created, err = certs.LoadOrCreateCA(pc.dir, certs.CAOptions{Name: pc.cluster}); err != nil {
			return err
		}
		if created {
			if _, err := fmt.Fprintf(w, "created CA %q in %s; keep %s on this machine\n", ca.Cert.Subject.CommonName, pc.dir, certs.CAKeyFile); err != nil {
				return err
			}
		}
		if err := writeCACopies(w, ca, pc.dir, pc.caNames); err != nil {
			return err
		}
	} else {
		if o.dir == "" {
			return errors.New("give --dir DIR, the directory holding the CA, or -f PLAN")
		}
		if targets, err = issueTargets(o, changed); err != nil {
			return err
		}
		if ca, err = certs.LoadCA(o.dir); err != nil {
			return err
		}
	}
	// Judge every existing file before writing anything, so a refusal
	// leaves the directory as it was.
	var keep []bool
	misfits := &misfitError{}
	for _, t := range targets {
		k, err := keepExisting(o, t)
		var me *misfitError
		switch {
		case errors.As(err, &me):
			misfits.files = append(misfits.files, me.files...)
		case err != nil:
			return err
		}
		keep = append(keep, k)
	}
	if len(misfits.files) > 0 {
		return misfits
	}
	for i, t := range targets {
		crt, key := t.base+".crt", t.base+".key"
		if keep[i] {
			info, err := certs.Inspect(filepath.Join(o.dir, crt))
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(w, "kept %s and %s: the %s is valid until %s and fits the request (--force replaces it)\n", crt, key, t.label, certsDay(info.NotAfter)); err != nil {
				return err
			}
			continue
		}
		t.req.Validity = validity
		is, err := certs.Issue(ca, t.req)
		if err != nil {
			return err
		}
		if err := certs.WriteIssued(o.dir, t.base, is); err != nil {
			return err
		}
		note := ""
		if is.Cert.NotAfter.Equal(ca.Cert.NotAfter) {
			note = ", limited by the CA's expiry"
		}
		if _, err := fmt.Fprintf(w, "wrote %s and %s: %s (%s), SANs %s, valid until %s%s\n",
			crt, key, t.label, certsUsageText(t.req.Kind), certsSansText(is.Cert.IPAddresses, is.Cert.DNSNames), certsDay(is.Cert.NotAfter), note); err != nil {
			return err
		}
	}
	return nil
}

// issueTargets turns the flags into the certificates to issue.
func issueTargets(o certsIssueOptions, changed func(string) bool) ([]issueTarget, error) {
	switch {
	case o.member != "" && o.client != "":
		return nil, errors.New("give either --member or --client, not both")
	case o.member == "" && o.client == "":
		return nil, errors.New("give --member NAME --ip IP for a member, or --client NAME for a client")
	case o.client != "":
		for _, f := range []string{"ip", "hostname", "san", "srv-domain", "loopback"} {
			if changed(f) {
				return nil, fmt.Errorf("--%s applies to --member only: a client certificate has no SANs", f)
			}
		}
		if err := certs.ValidateName(o.client); err != nil {
			return nil, fmt.Errorf("--client: %w", err)
		}
		// The member files are <member>-peer and <member>-client, and
		// the CA is ca: a client must not be able to overwrite them.
		if o.client == "ca" || strings.HasSuffix(o.client, "-peer") || strings.HasSuffix(o.client, "-client") {
			return nil, fmt.Errorf("--client %q clashes with the CA's or a member's file names: choose another name", o.client)
		}
		return []issueTarget{{base: o.client, label: "client certificate for " + o.client,
			req: certs.Request{Kind: certs.KindClient, Name: o.client}}}, nil
	}
	if err := certs.ValidateName(o.member); err != nil {
		return nil, fmt.Errorf("--member: %w", err)
	}
	if o.ip == "" {
		return nil, errors.New("--member needs --ip, the address the member listens on and advertises")
	}
	ip := net.ParseIP(o.ip)
	if ip == nil {
		return nil, fmt.Errorf("--ip %q is not an IP address", o.ip)
	}
	if ip.IsUnspecified() {
		return nil, fmt.Errorf("--ip %s is a listen-everywhere address: give the member's own address", o.ip)
	}
	for _, s := range o.sans {
		if h := strings.TrimSpace(s); h == "" || h == "0.0.0.0" || h == "::" {
			return nil, fmt.Errorf("--san %q is not an address clients connect to", s)
		}
	}
	var loop []string
	if o.loopback {
		loop = []string{"127.0.0.1"}
	}
	peerIPs, peerDNS := certs.SANsForMember(o.ip, o.hostname, nil, o.sans, o.srvDomain)
	srvIPs, srvDNS := certs.SANsForMember(o.ip, o.hostname, loop, o.sans, o.srvDomain)
	return []issueTarget{
		{base: o.member + "-peer", label: "peer certificate for " + o.member,
			req: certs.Request{Kind: certs.KindPeer, Name: o.member, IPs: peerIPs, DNSNames: peerDNS}},
		{base: o.member + "-client", label: "client-port certificate for " + o.member,
			req: certs.Request{Kind: certs.KindServer, Name: o.member, IPs: srvIPs, DNSNames: srvDNS}},
	}, nil
}

// keepExisting reports whether t's files exist and already satisfy the
// request; existing files that do not are an error without --force.
func keepExisting(o certsIssueOptions, t issueTarget) (bool, error) {
	crt, key := filepath.Join(o.dir, t.base+".crt"), filepath.Join(o.dir, t.base+".key")
	if !certsFileExists(crt) && !certsFileExists(key) {
		return false, nil
	}
	if o.force {
		return false, nil
	}
	probs := certs.Check(crt, key, filepath.Join(o.dir, certs.CACertFile),
		certs.CheckSpec{Kind: t.req.Kind, IPs: t.req.IPs, DNSNames: t.req.DNSNames})
	if info, err := certs.Inspect(crt); err == nil && info.Subject != t.req.Name {
		probs = append(probs, certs.Problem{File: crt, Message: fmt.Sprintf("belongs to %q, not %q", info.Subject, t.req.Name)})
	}
	if len(probs) == 0 {
		return true, nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s already exists and does not fit the request:", crt)
	for _, p := range probs {
		// The problem's own fix would say "reissue": that is what
		// --force does.
		fmt.Fprintf(&b, "\n  %s: %s", filepath.Base(p.File), p.Message)
	}
	return false, &misfitError{files: []string{b.String()}}
}

// misfitError lists existing certificates that do not fit what is asked
// for; nothing was written.
type misfitError struct {
	files []string // one text per file: its name and its problems
}

func (e *misfitError) Error() string {
	it := "it"
	if len(e.files) > 1 {
		it = "them"
	}
	return strings.Join(e.files, "\n") + "\nuse --force to replace " + it
}

func certsFileExists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// certsCheckOptions are the flags of certs check.
type certsCheckOptions struct {
	dir      string
	warnDays int
	output   string
	file     string
}

func newCertsCheckCmd() *cobra.Command {
	var o certsCheckOptions
	cmd := &cobra.Command{
		Use:   "check (--dir DIR | -f PLAN) [--warn-days 30]",
		Short: "List and check every certificate in DIR",
		Long: `check lists every certificate in DIR with its subject, SANs, expiry and whether it chains
to DIR/ca.crt with the usages its name implies, and reports problems: unreadable or
malformed files, keys that do not match, certificates from another CA, expired ones and
those expiring within --warn-days. With -f PLAN it also checks that every member's
certificates exist and cover the SANs the plan needs. The exit status is 1 when there
is any problem.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCertsCheck(cmd.InOrStdin(), cmd.OutOrStdout(), o)
		},
	}
	cmd.Flags().StringVar(&o.dir, "dir", "", "certificate directory (default with -f: spec.tls.dir)")
	cmd.Flags().StringVarP(&o.file, "file", "f", "", "plan file (- for stdin) whose members' certificates to check")
	cmd.Flags().IntVar(&o.warnDays, "warn-days", 30, "warn about certificates expiring within this many days (0: never)")
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	return cmd
}

func runCertsCheck(stdin io.Reader, w io.Writer, o certsCheckOptions) error {
	if err := checkTextOrJSON(o.output); err != nil {
		return err
	}
	if o.warnDays < 0 {
		return fmt.Errorf("--warn-days %d: use 0 or more", o.warnDays)
	}
	warn := time.Duration(o.warnDays) * 24 * time.Hour
	if o.warnDays == 0 {
		warn = -1 // never warn
	}
	var pc *planCerts
	if o.file != "" {
		var err error
		if pc, err = loadPlanCerts(stdin, o.file, o.dir); err != nil {
			return err
		}
		o.dir = pc.dir
	}
	if o.dir == "" {
		return errors.New("give --dir DIR or -f PLAN")
	}
	rep, err := certs.ScanDir(o.dir, certs.ScanOptions{WarnWithin: warn})
	if err != nil {
		return err
	}
	if pc != nil {
		addPlanProblems(rep, pc, warn)
	}
	if o.output == "json" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%s\n", data); err != nil {
			return err
		}
	} else if err := printCertsReport(w, rep); err != nil {
		return err
	}
	if rep.ProblemCount() > 0 {
		return &exitError{code: 1}
	}
	return nil
}

func printCertsReport(w io.Writer, rep *certs.DirReport) error {
	var b strings.Builder
	if rep.CA != nil {
		fmt.Fprintf(&b, "CA %s: %q, valid until %s (%s)\n", filepath.Base(rep.CA.File), rep.CA.Subject, certsDay(rep.CA.NotAfter), certsDaysText(rep.CA.DaysLeft))
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	if len(rep.Certs) > 0 {
		fmt.Fprintln(tw, "FILE\tKIND\tSUBJECT\tSANS\tNOT AFTER\tDAYS\tCHAIN")
	}
	for _, c := range rep.Certs {
		chain := "ok"
		if !c.ChainOK {
			chain = "broken"
		}
		sans := strings.Join(append(append([]string{}, c.IPs...), c.DNSNames...), ",")
		if sans == "" {
			sans = "-"
		}
		notAfter, days := "-", "-"
		if !c.NotAfter.IsZero() {
			notAfter, days = certsDay(c.NotAfter), strconv.Itoa(c.DaysLeft)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", filepath.Base(c.File), certsDash(c.Kind), certsDash(c.Subject), sans, notAfter, days, chain)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	errs, warns := 0, 0
	var lines []string
	collect := func(ps []certs.Problem) {
		for _, p := range ps {
			if p.Severity == certs.SeverityError {
				errs++
			} else {
				warns++
			}
			lines = append(lines, fmt.Sprintf("  %-7s %s", p.Severity, p.String()))
		}
	}
	collect(rep.Problems)
	for _, c := range rep.Certs {
		collect(c.Problems)
	}
	if len(lines) > 0 {
		b.WriteString("\nproblems:\n" + strings.Join(lines, "\n") + "\n")
	}
	fmt.Fprintf(&b, "\n%s: %s, %s, %s\n", rep.Dir, plural(len(rep.Certs), "certificate"), plural(errs, "error"), plural(warns, "warning"))
	_, err := io.WriteString(w, b.String())
	return err
}

// parseValidity reads "5y", "90d" or a Go duration ("8760h").
func certsParseValidity(flag, s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("%s %q: use a duration such as 1y, 90d or 2160h", flag, s)
	if s == "" {
		return 0, bad
	}
	var d time.Duration
	switch unit := s[len(s)-1]; unit {
	case 'y', 'd':
		n, err := strconv.Atoi(s[:len(s)-1])
		if err != nil || n <= 0 || n > 100 && unit == 'y' || n > 36500 {
			return 0, bad
		}
		d = time.Duration(n) * 24 * time.Hour
		if unit == 'y' {
			d *= 365
		}
	default:
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, bad
		}
	}
	if d < time.Hour {
		return 0, fmt.Errorf("%s %q: use at least 1h", flag, s)
	}
	return d, nil
}

func certsUsageText(k certs.Kind) string {
	if k == certs.KindClient {
		return "client auth"
	}
	return "server and client auth"
}

func certsSansText(ips []net.IP, dns []string) string {
	var parts []string
	for _, ip := range ips {
		parts = append(parts, ip.String())
	}
	parts = append(parts, dns...)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func certsDay(t time.Time) string { return t.UTC().Format("2006-01-02") }

func certsDaysFromNow(t time.Time) string {
	return certsDaysText(int(time.Until(t) / (24 * time.Hour)))
}

func certsDaysText(n int) string {
	if n < 0 {
		return fmt.Sprintf("expired %s ago", plural(-n, "day"))
	}
	return plural(n, "day") + " left"
}

func certsDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
