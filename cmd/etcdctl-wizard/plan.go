package main

import (
	"encoding/json"
	"errors"
	"etcdctl-wizard/node/fileutil"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"etcdctl-wizard/plan"

	"github.com/spf13/cobra"
)

func newPlanCmd() *cobra.Command {
	return newGroupCmd("plan", "Validate, export and import cluster plans", "",
		newValidateCmd(), newExportCmd(), newImportCmd())
}

// validateOptions are the flags of plan validate.
type validateOptions struct {
	file   string
	output string
}

func newValidateCmd() *cobra.Command {
	var o validateOptions
	cmd := &cobra.Command{
		Use:   "validate -f PLAN",
		Short: "Check a plan with the members' own start-up checks",
		Long: `validate loads the plan and judges every member's effective etcd configuration with the
checks etcd-node runs at start, plus the plan's own rules. Findings are grouped by member.
The exit status is 1 when there is any error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runValidate(cmd.InOrStdin(), cmd.OutOrStdout(), o)
		},
	}
	cmd.Flags().StringVarP(&o.file, "file", "f", "", "plan file (- for stdin)")
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// validateReport is the --output json document.
type validateReport struct {
	File     string          `json:"file"`
	Valid    bool            `json:"valid"`
	Errors   int             `json:"errors"`
	Warnings int             `json:"warnings"`
	Findings []plan.Finding  `json:"findings"`
	Members  []memberIDsJSON `json:"members,omitempty"`
}

type memberIDsJSON struct {
	Name      string `json:"name"`
	MemberID  string `json:"memberID"`
	ClusterID string `json:"clusterID"`
}

// checkTextOrJSON refuses an --output other than the two that commands
// printing a report know.
func checkTextOrJSON(output string) error {
	if output != "text" && output != "json" {
		return fmt.Errorf("--output %q: use text or json", output)
	}
	return nil
}

// loadPlan reads the plan named by -f; "-" is stdin.
func loadPlan(stdin io.Reader, file string) (*plan.Plan, error) {
	if file == "-" {
		return plan.LoadReader(stdin, "<stdin>")
	}
	return plan.Load(file)
}

func runValidate(stdin io.Reader, w io.Writer, o validateOptions) error {
	if err := checkTextOrJSON(o.output); err != nil {
		return err
	}
	p, err := loadPlan(stdin, o.file)
	var findings []plan.Finding
	var ids []plan.MemberIdentity
	if err != nil {
		var le *plan.LoadError
		if !errors.As(err, &le) {
			return err
		}
		findings = []plan.Finding{le.Finding()}
	} else {
		findings = plan.Validate(p)
		if !plan.HasErrors(findings) {
			findings = append(findings, plan.ValidateCertificates(p, planDir(o.file))...)
		}
		ids = plan.Identities(p)
	}
	rep := validateReport{File: o.file, Findings: findings}
	if rep.Findings == nil {
		rep.Findings = []plan.Finding{}
	}
	for _, f := range findings {
		if f.Severity == plan.SeverityError {
			rep.Errors++
		} else {
			rep.Warnings++
		}
	}
	rep.Valid = rep.Errors == 0
	if rep.Valid {
		for _, id := range ids {
			rep.Members = append(rep.Members, memberIDsJSON{id.Name, plan.IDString(id.MemberID), plan.IDString(id.ClusterID)})
		}
	}
	if o.output == "json" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%s\n", data); err != nil {
			return err
		}
	} else if err := printFindings(w, rep); err != nil {
		return err
	}
	if !rep.Valid {
		return &exitError{code: 1}
	}
	return nil
}

// printFindings writes the findings grouped by member, cluster-wide first.
func printFindings(w io.Writer, rep validateReport) error {
	var b strings.Builder
	var groups []string
	byGroup := map[string][]plan.Finding{}
	for _, f := range rep.Findings {
		g := f.Member
		if g == "" {
			g = "cluster"
			if f.File != "" {
				g = f.File
			}
		}
		if _, ok := byGroup[g]; !ok {
			groups = append(groups, g)
		}
		byGroup[g] = append(byGroup[g], f)
	}
	for _, g := range groups {
		fmt.Fprintf(&b, "%s:\n", g)
		for _, f := range byGroup[g] {
			where := f.Field
			if f.Line > 0 {
				where = fmt.Sprintf("line %d", f.Line)
				if f.Column > 0 {
					where += fmt.Sprintf(":%d", f.Column)
				}
				if f.Field != "" {
					where += " " + f.Field
				}
			}
			fmt.Fprintf(&b, "  %-7s %s  %s\n", f.Severity, f.Code, where)
			fmt.Fprintf(&b, "          %s\n", f.Message)
			for _, line := range strings.Split(f.Hint, "\n") {
				if line != "" {
					fmt.Fprintf(&b, "          hint: %s\n", line)
				}
			}
		}
	}
	if len(rep.Findings) > 0 {
		b.WriteString("\n")
	}
	switch {
	case !rep.Valid:
		fmt.Fprintf(&b, "%s: %s, %s\n", rep.File, plural(rep.Errors, "error"), plural(rep.Warnings, "warning"))
	default:
		fmt.Fprintf(&b, "%s: valid, %s\n", rep.File, plural(rep.Warnings, "warning"))
		for _, m := range rep.Members {
			fmt.Fprintf(&b, "  %-12s member %-16s cluster %s\n", m.Name, m.MemberID, m.ClusterID)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// exportOptions are the flags of plan export.
type exportOptions struct {
	file           string
	format         string
	outDir         string
	skipValidation bool
}

func newExportCmd() *cobra.Command {
	var o exportOptions
	cmd := &cobra.Command{
		Use:   "export -f PLAN [--format sh|env|systemd|json|yaml|dns] [-o DIR]",
		Short: "Print what apply would do (dry run)",
		Long: `export renders the plan without touching any host: sh prints each member's etcd command
line, env its ETCD_* file, systemd its unit, json/yaml the full per-host step list that
apply executes, dns the records a dns-srv plan needs. With -o DIR it writes one file per
member instead of printing. A plan with validation errors is refused unless
--skip-validation is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runExport(cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	cmd.Flags().StringVarP(&o.file, "file", "f", "", "plan file (- for stdin)")
	cmd.Flags().StringVar(&o.format, "format", plan.FormatShell, "sh, env, systemd, json, yaml or dns")
	cmd.Flags().StringVarP(&o.outDir, "output-dir", "o", "", "write one file per member into this directory")
	cmd.Flags().BoolVar(&o.skipValidation, "skip-validation", false, "export even when the plan has validation errors")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func runExport(stdin io.Reader, stdout, stderr io.Writer, o exportOptions) error {
	p, err := loadPlan(stdin, o.file)
	if err != nil {
		return err
	}
	if !o.skipValidation {
		if fs := plan.Validate(p); plan.HasErrors(fs) {
			_ = printFindings(stderr, validateReport{File: o.file, Findings: fs, Errors: countErrors(fs)})
			return fmt.Errorf("%s has validation errors; fix them (see 'plan validate') or pass --skip-validation", o.file)
		}
	}
	ex, err := plan.Export(p, o.format)
	if err != nil {
		return err
	}
	if o.outDir == "" {
		_, err := stdout.Write(ex.Combined)
		return err
	}
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return err
	}
	for _, f := range ex.Files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(f.Name, ".sh") {
			mode = 0o755
		}
		if strings.HasSuffix(f.Name, ".env") {
			mode = 0o600
		}
		if f.Name != filepath.Base(f.Name) || strings.HasPrefix(f.Name, ".") {
			return fmt.Errorf("refusing to write %q: member and cluster names must not hold path elements", f.Name)
		}
		dst := filepath.Join(o.outDir, f.Name)
		if err := fileutil.WriteFileAtomic(dst, f.Data, mode); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s\n", dst)
	}
	return nil
}

func countErrors(fs []plan.Finding) int {
	n := 0
	for _, f := range fs {
		if f.Severity == plan.SeverityError {
			n++
		}
	}
	return n
}

// importOptions are the flags of plan import.
type importOptions struct {
	output string
}

func newImportCmd() *cobra.Command {
	var o importOptions
	cmd := &cobra.Command{
		Use:   "import FILE... [-o PLAN]",
		Short: "Build a plan from existing etcd command lines or ETCD_* files",
		Long: `import reads etcd command lines (as in the clustering guide: '$ ' prompts, '\' line
continuations, several commands per file, --flag value or --flag=value) or ETCD_* environment
files (one member per file), and prints the plan YAML. Whatever does not fit the plan's
defaults is kept as per-member flags, so 'plan validate' judges the original configuration.
Use - to read stdin.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImport(cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args, o)
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "write the plan to this file instead of stdout")
	return cmd
}

func runImport(stdin io.Reader, stdout, stderr io.Writer, files []string, o importOptions) error {
	var sources []plan.ImportSource
	for _, f := range files {
		var data []byte
		var err error
		name := f
		if f == "-" {
			name = "<stdin>"
			data, err = io.ReadAll(io.LimitReader(stdin, plan.MaxPlanSize+1))
		} else {
			data, err = readLimited(f)
		}
		if err != nil {
			return err
		}
		if len(data) > plan.MaxPlanSize {
			return fmt.Errorf("%s: larger than %d bytes; is it really a command file?", name, plan.MaxPlanSize)
		}
		sources = append(sources, plan.ImportSource{Name: name, Data: data})
	}
	res, err := plan.Import(sources)
	if err != nil {
		return err
	}
	for _, n := range res.Notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	data, err := plan.Marshal(res.Plan)
	if err != nil {
		return err
	}
	header := fmt.Sprintf("# Imported by etcdctl-wizard plan import from %s.\n# Per-member flags keep what differs from the plan's defaults; run 'plan validate'.\n",
		strings.Join(files, ", "))
	data = append([]byte(header), data...)
	if o.output == "" {
		_, err := stdout.Write(data)
		return err
	}
	return fileutil.WriteFileAtomic(o.output, data, 0o644)
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, plan.MaxPlanSize+1))
}

// planDir is the folder relative paths in a plan are taken from: the plan
// file's, or the working directory for a plan read from stdin.
func planDir(file string) string {
	if file == "" || file == "-" {
		return "."
	}
	return filepath.Dir(file)
}

// newGroupCmd is a command that only groups subcommands; run alone it
// prints its help.
func newGroupCmd(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(subs...)
	return cmd
}
