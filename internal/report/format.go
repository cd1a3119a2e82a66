package report

import (
	"fmt"
	"strings"
	"time"
)

// Figures as the report writes them: decimal units (as registries show
// sizes), durations to a useful precision, times in UTC.

func formatBytes(n int64) string {
	neg := ""
	if n < 0 {
		neg, n = "-", -n
	}
	f := float64(n)
	switch {
	case n < 1000:
		return fmt.Sprintf("%s%d B", neg, n)
	case n < 1_000_000:
		return fmt.Sprintf("%s%.1f kB", neg, f/1e3)
	case n < 1_000_000_000:
		return fmt.Sprintf("%s%.1f MB", neg, f/1e6)
	}
	return fmt.Sprintf("%s%.2f GB", neg, f/1e9)
}

// formatDelta is a signed size change with its share of the old size.
func formatDelta(now, before int64) string {
	d := now - before
	if d == 0 {
		return "no change"
	}
	s := formatBytes(d)
	if d > 0 {
		s = "+" + s
	}
	if before > 0 {
		s += fmt.Sprintf(" (%+.1f %%)", 100*float64(d)/float64(before))
	}
	return s
}

func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + formatDuration(-d)
	case d == 0:
		return "0 s"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%d min %02d s", int(d.Minutes()), int(d.Seconds())%60)
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%d h %02d min", int(d.Hours()), int(d.Minutes())%60)
}

// formatOffset is a position on the timeline's axis: 0:00, 1:30, 1:02:00.
func formatOffset(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// shortDigest is sha256:0123456789ab — enough to tell digests apart on
// screen; the full one is in the title and the copyable text.
func shortDigest(d string) string {
	if i := strings.LastIndex(d, "@"); i >= 0 {
		d = d[i+1:]
	}
	if alg, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return alg + ":" + hex[:12]
	}
	return d
}

// digestOf is the digest part of a reference by digest.
func digestOf(ref string) string {
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		return ref[i+1:]
	}
	return ref
}

func shortCommit(c string) string {
	if len(c) > 12 && isHex(c) {
		return c[:12]
	}
	return c
}

func isHex(s string) bool {
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F') {
			return false
		}
	}
	return true
}

// truncate cuts a label for the chart (its full text is in the title).
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
