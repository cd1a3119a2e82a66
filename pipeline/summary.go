package pipeline

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/lines"
)

// The summary: printed and saved as dist/<version>/summary.txt, also on failure.

// LockFileName is the lock's name in dist/<version>/.
const LockFileName = "lhcbdirac.lock"

// ImageRow is one image's line of the summary: how far it got.
type ImageRow struct {
	Name   string
	Ref    string // repo@digest, "" when not pushed
	Size   int64
	Build  time.Duration
	Smoke  string
	Failed bool
}

// Rows are the summary's lines, one per image of the release.
func (r *Release) Rows() []ImageRow {
	var rows []ImageRow
	for _, im := range images.All {
		row := ImageRow{Name: im.Name, Smoke: "not run"}
		if r.Built != nil {
			for _, b := range r.Built.Images {
				if b.Image.Name == im.Name {
					row.Build = b.Took
					row.Failed = b.Err != nil
				}
			}
		}
		if r.Smoked != nil {
			if s, ok := r.Smoked.Images[im.Name]; ok {
				switch {
				case s.NotRun != "":
					row.Smoke = images.NotRunSummary(s.NotRun)
				default:
					row.Smoke = s.Summary
					row.Failed = row.Failed || !s.Passed
				}
			} else if r.Config.Only != "" && !im.ForService {
				row.Smoke = images.NotRunSummary("testService")
			}
		}
		if r.Pushed != nil {
			if p, ok := r.Pushed.Images[im.Name]; ok && p.Digest != "" {
				row.Ref, row.Size = p.Ref(), p.Size
			}
		}
		if r.Found != nil && r.Found.Complete {
			row.Smoke = "passed (its smoke attestation, " + r.Found.Smoked[im.Name].UTC().Format("2006-01-02 15:04") + " UTC)"
		}
		rows = append(rows, row)
	}
	return rows
}

// DeployLine says what the deploy stage did, or why it did not run.
func (r *Release) DeployLine() string {
	for _, s := range r.Stages {
		if s.Name != "deploy" {
			continue
		}
		switch s.Outcome {
		case Skipped:
			return "not deployed: " + s.Reason
		case Failed:
			return "FAILED: " + s.Err.Error()
		case Passed:
			return fmt.Sprintf("deployed %d apps to Marathon, their evidence verified first", len(r.Rendered.Apps))
		}
	}
	return ""
}

// WriteSummary prints the table: image, digest, size, build time, smoke.
func (r *Release) WriteSummary(w io.Writer) {
	if w == nil {
		return
	}
	c := r.Config
	fmt.Fprintf(w, "\nRelease %s\n", c.Version.Raw)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tDIGEST\tSIZE\tBUILD\tSMOKE")
	for _, row := range r.Rows() {
		digest, size, build := "(not pushed)", "-", "-"
		if row.Ref != "" {
			digest, size = row.Ref, fmt.Sprintf("%.1f MB", float64(row.Size)/1e6)
		}
		if row.Build > 0 {
			build = row.Build.Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", row.Name, digest, size, build, row.Smoke)
	}
	tw.Flush()
	lock := r.lock()
	switch {
	case c.Fixture():
		fmt.Fprintln(w, "DIRAC, LHCbDIRAC: FIXTURE (a test double, LHCBDIRAC_SOURCES=fixture): not the real DIRAC")
	case lock != nil:
		fmt.Fprintf(w, "LHCbDIRAC %s, DIRAC %s: %d distributions from the lock %s (%s)\n",
			lock.LHCbDIRACVersion(), lock.DIRACVersion(), len(lock.Runtime), lock.Digest(), filepath.Join(c.Dist, LockFileName))
	}
	if r.Tagged != nil {
		fmt.Fprintf(w, "Tags: %s\n", strings.Join(r.Tagged.Tags, ", "))
	}
	if r.Attested != nil {
		fmt.Fprintf(w, "Evidence: SBOM, provenance and smoke attestation signed (key %s) and attached to every image\n", r.Attested.KeyID)
	}
	if d := r.DeployLine(); d != "" {
		fmt.Fprintf(w, "Deploy: %s\n", d)
	}
	if r.Inputs != nil {
		for _, s := range r.Inputs.Sources {
			if c.Fixture() {
				fmt.Fprintf(w, "%s: FIXTURE %s %s @ %s\n", s.Name, s.Repo, s.Branch, s.Commit)
			} else {
				fmt.Fprintf(w, "%s hotfix: %s %s @ %s\n", s.Name, s.Repo, s.Branch, s.Commit)
			}
		}
	}
	// A service this machine cannot run: why (neither passed nor failed).
	for _, s := range r.Smoked.Services() {
		if s.CannotRun != "" {
			fmt.Fprintf(w, "%s: %s\n", s.Service, s.CannotRun)
		}
	}
	// A service that did not start: the last lines of what it printed.
	for _, s := range r.Smoked.Services() {
		if s.Err != nil {
			fmt.Fprintf(w, "\n%s did not pass its smoke test; the last lines of its log:\n%s\n", s.Service, indentedTail(s.Log, 15))
		}
	}
}

func (r *Release) lock() *lhcbdirac.Lock {
	if r.Inputs == nil || r.Inputs.Lock == nil {
		return nil
	}
	return r.Inputs.Lock
}

// indentedTail is the last n lines of s, indented under the line that
// names them.
func indentedTail(s string, n int) string {
	return "    " + strings.Join(lines.Last(s, n), "\n    ")
}

// saveSummary writes dist/<version>/summary.txt and the lock the release
// used (LHCBDIRAC_LOCK=<it> builds it again); testService writes nothing.
func (r *Release) saveSummary() error {
	if r.oneService {
		return nil
	}
	if err := os.MkdirAll(r.Config.Dist, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	r.WriteSummary(&b)
	if r.Inputs != nil && r.Inputs.Lock != nil {
		if err := cachedir.WriteFile(filepath.Join(r.Config.Dist, LockFileName), r.Inputs.Lock.Raw); err != nil {
			return err
		}
	}
	return cachedir.WriteFile(filepath.Join(r.Config.Dist, "summary.txt"), []byte(b.String()))
}
