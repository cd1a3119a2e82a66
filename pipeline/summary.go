package pipeline

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

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
	if r.Pushed {
		fmt.Fprintf(w, "Tags: %s\n", strings.Join(push.Tags(r.Config.Version), ", "))
	}
	if r.Deployed != "" {
		fmt.Fprintf(w, "Deploy: %s\n", r.Deployed)
	}
	for _, s := range r.Sources {
		fmt.Fprintf(w, "%s: %s %s @ %s\n", s.Name, s.Repo, s.Branch, s.Commit)
	}
}

func (r *Release) saveSummary() error {
	if err := os.MkdirAll(r.Config.Dist, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	r.WriteSummary(&b)
	return os.WriteFile(filepath.Join(r.Config.Dist, "summary.txt"), []byte(b.String()), 0o644)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
