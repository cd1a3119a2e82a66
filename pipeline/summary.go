package pipeline

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/push"
)

// The summary: printed and saved as dist/<version>/summary.txt, also on failure.

// WriteSummary prints the table: image, digest, size, build time, smoke.
func (r *Release) WriteSummary(w io.Writer) {
	if w == nil {
		return
	}
	fmt.Fprintf(w, "\nRelease %s\n", r.Config.Version.Raw)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tDIGEST\tSIZE\tBUILD\tSMOKE")
	for _, n := range ImageNames {
		im := r.Images[n]
		digest, size := "(not pushed)", "-"
		if im.Pushed.Digest != "" {
			digest = im.Pushed.Ref()
			size = fmt.Sprintf("%.1f MB", float64(im.Pushed.Size)/1e6)
		}
		build := "-"
		if im.BuildTime > 0 {
			build = im.BuildTime.Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n, digest, size, build, im.Smoke)
	}
	tw.Flush()
	switch {
	case r.Config.Fixture():
		fmt.Fprintln(w, "DIRAC, LHCbDIRAC: FIXTURE (a test double, LHCBDIRAC_SOURCES=fixture): not the real DIRAC")
	case r.Lock != nil:
		fmt.Fprintf(w, "LHCbDIRAC %s, DIRAC %s: %d distributions from the lock %s (%s)\n",
			r.Lock.LHCbDIRACVersion(), r.Lock.DIRACVersion(), len(r.Lock.Runtime), r.Lock.Digest(), filepath.Join(r.Config.Dist, LockFileName))
	}
	if r.Pushed {
		fmt.Fprintf(w, "Tags: %s\n", strings.Join(push.Tags(r.Config.Version), ", "))
	}
	if r.Deployed != "" {
		fmt.Fprintf(w, "Deploy: %s\n", r.Deployed)
	}
	for _, s := range r.Sources {
		if r.Config.Fixture() {
			fmt.Fprintf(w, "%s: FIXTURE %s %s @ %s\n", s.Name, s.Repo, s.Branch, s.Commit)
		} else {
			fmt.Fprintf(w, "%s hotfix: %s %s @ %s\n", s.Name, s.Repo, s.Branch, s.Commit)
		}
	}
	// A service that did not start: the last lines of what it printed.
	for _, s := range r.Smoke {
		if s.Err != nil {
			fmt.Fprintf(w, "\n%s did not pass its smoke test; the last lines of its log:\n%s\n", s.Service, lastLines(s.Log, 15))
		}
	}
}

// LockFileName is the lock's name in dist/<version>/.
const LockFileName = "lhcbdirac.lock"

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

func (r *Release) saveSummary() error {
	if err := os.MkdirAll(r.Config.Dist, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	r.WriteSummary(&b)
	if r.Lock != nil {
		// The lock the release used: LHCBDIRAC_LOCK=<it> builds it again.
		if err := cachedir.WriteFile(filepath.Join(r.Config.Dist, LockFileName), r.Lock.Raw); err != nil {
			return err
		}
	}
	return cachedir.WriteFile(filepath.Join(r.Config.Dist, "summary.txt"), []byte(b.String()))
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
