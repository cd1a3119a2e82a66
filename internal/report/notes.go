package report

import (
	"bytes"
	"fmt"
	"html"
	"regexp"
	"strings"
)

// The release notes: the report's essentials in Markdown (CommonMark with
// GitHub's and GitLab's tables) for a release description. Every text from
// the input goes through md (or code) — names may hold pipes, backticks,
// HTML — and tables stay tables.

// topChanges bounds the lock changes listed in the notes (the report has all).
const topChanges = 25

// smokeTableMax: up to this many services the notes list them all; beyond,
// the failures are listed and the full table is folded.
const smokeTableMax = 20

var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", `*`, `\*`, `_`, `\_`, `[`, `\[`, `]`, `\]`, `|`, `\|`,
	`~`, `\~`, `#`, `\#`, `$`, `\$`, `!`, `\!`,
	`&`, `&amp;`, `<`, `&lt;`, `>`, `&gt;`,
	"\n", " ", "\r", " ",
)

// md is s as literal Markdown text, safe in a table cell and inline.
func md(s string) string { return mdEscaper.Replace(s) }

var codeSafe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9:@/._+=,-]*$`)

// code is s as a code span when it is a plain token (a digest, a version),
// else as escaped text: a code span cannot escape what it holds.
func code(s string) string {
	if s == "" {
		return "—"
	}
	if codeSafe.MatchString(s) {
		return "`" + s + "`"
	}
	return md(s)
}

// fence is a fenced block that its content cannot close.
func fence(b *bytes.Buffer, lines []string) {
	longest := 0
	for _, l := range lines {
		run := 0
		for _, r := range l {
			if r == '`' {
				run++
				longest = max(longest, run)
			} else {
				run = 0
			}
		}
	}
	f := strings.Repeat("`", max(3, longest+1))
	fmt.Fprintf(b, "%stext\n", f)
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	fmt.Fprintf(b, "%s\n", f)
}

func writeNotes(b *bytes.Buffer, v view) {
	r := v.R
	title := "LHCbDIRAC " + md(r.Version)
	fmt.Fprintf(b, "## %s — %s\n\n", title, md(v.Verdict.Label))
	if r.Result.Outcome == Failed && r.Result.Error != "" {
		fence(b, strings.Split(r.Result.Error, "\n"))
		b.WriteByte('\n')
	}
	for _, f := range r.Flags {
		fmt.Fprintf(b, "> **%s** %s\n\n", md(string(f.Name)), md(f.StandsFor))
	}
	if len(v.Stages) > 0 {
		var parts []string
		for _, s := range v.Stages {
			parts = append(parts, fmt.Sprintf("%s %s", md(s.Name), md(s.Label)))
		}
		fmt.Fprintf(b, "Stages: %s.\n\n", strings.Join(parts, " → "))
	}

	b.WriteString("| Component | |\n| --- | --- |\n")
	fmt.Fprintf(b, "| LHCbDIRAC | %s |\n", code(r.LHCbDIRAC))
	fmt.Fprintf(b, "| DIRAC | %s |\n", code(r.DIRAC))
	fmt.Fprintf(b, "| Lock | %s |\n", code(r.LockDigest))
	fmt.Fprintf(b, "| Pipeline commit | %s |\n", code(r.PipelineCommit))
	for _, h := range r.Hotfixes {
		fmt.Fprintf(b, "| %s hotfix | %s %s @ %s |\n", md(h.Component), code(h.Repository), code(h.Branch), code(h.Commit))
	}
	b.WriteByte('\n')

	writeLockNotes(b, v.Lock)
	writeImageNotes(b, v.Images)
	writeSmokeNotes(b, v.Smoke)
	writeEvidenceNotes(b, v.Evidence)
	writeDeployNotes(b, v.Deploy)
	if len(v.Problems) > 0 {
		fmt.Fprintf(b, "### Input problems\n\n")
		for _, p := range v.Problems {
			fmt.Fprintf(b, "- %s\n", md(p))
		}
		b.WriteByte('\n')
	}
	b.WriteString("_The full report, with the timeline, every layer and the smoke logs, is `report.html`._\n")
}

func writeLockNotes(b *bytes.Buffer, lv lockView) {
	d := lv.Diff
	if d.Compared {
		fmt.Fprintf(b, "### What changed since %s\n\n", md(d.Against))
	} else {
		b.WriteString("### The lock\n\n")
	}
	if lv.Empty != "" {
		fmt.Fprintf(b, "%s\n\n", md(lv.Empty))
		return
	}
	if !d.Compared {
		fmt.Fprintf(b, "%d distributions; no comparison: %s.\n\n", d.Total, md(d.Missing))
		return
	}
	for _, c := range lv.Components {
		fmt.Fprintf(b, "- **%s** %s → %s (%s)\n", md(c.Name), code(c.From), code(c.To), md(c.Kind))
	}
	if len(lv.Components) > 0 {
		b.WriteByte('\n')
	}
	fmt.Fprintf(b, "%d added, %d removed, %d upgraded, %d downgraded, %d same version with other files, %d unchanged (%d distributions).\n\n",
		d.Added, d.Removed, d.Upgraded, d.Downgraded, d.Refiled, d.Unchanged, d.Total)
	if len(d.Changes) == 0 {
		return
	}
	b.WriteString("| Distribution | Change | From | To |\n| --- | --- | --- | --- |\n")
	for i, c := range d.Changes {
		if i == topChanges {
			break
		}
		kind := md(string(c.Kind))
		if c.Major {
			kind = "**" + kind + " (major)**"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", md(c.Name), kind, codeOrEmpty(c.From), codeOrEmpty(c.To))
	}
	if n := len(d.Changes) - topChanges; n > 0 {
		fmt.Fprintf(b, "\nand %d more changes (see the report).\n", n)
	}
	b.WriteByte('\n')
}

func codeOrEmpty(s string) string {
	if s == "" {
		return ""
	}
	return code(s)
}

func writeImageNotes(b *bytes.Buffer, iv imagesView) {
	b.WriteString("### Images\n\n")
	if iv.Empty != "" {
		fmt.Fprintf(b, "%s\n\n", md(iv.Empty))
		return
	}
	b.WriteString("| Image | Digest | Compressed | Uncompressed | Against the previous release |\n| --- | --- | ---: | ---: | --- |\n")
	for _, im := range iv.List {
		prev := "no previous image"
		if p := im.Prev; p != nil {
			prev = md(p.Compressed) + " against " + md(p.Release)
			if p.LayersKnown {
				prev += "; " + md(p.LayersNote)
			}
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", md(im.Name), code(im.Ref), md(im.Compressed), md(im.Uncompressed), prev)
	}
	b.WriteByte('\n')
}

func writeSmokeNotes(b *bytes.Buffer, sv smokeView) {
	b.WriteString("### Smoke tests\n\n")
	if sv.Empty != "" {
		fmt.Fprintf(b, "%s\n\n", md(sv.Empty))
		return
	}
	fmt.Fprintf(b, "%d of %d services passed, %d failed, %d cannot run here.\n\n", sv.Passed, sv.Total, sv.Failed, sv.Cannot)
	table := func(list []serviceView) {
		b.WriteString("| Service | Result | Checks | Time |\n| --- | --- | --- | ---: |\n")
		for _, s := range list {
			var checks []string
			for _, c := range s.Checks {
				if c.Reason != "" {
					checks = append(checks, fmt.Sprintf("%s %s: %s", md(c.Name), md(c.Label), md(c.Reason)))
					continue
				}
				checks = append(checks, fmt.Sprintf("%s %s (%s)", md(c.Name), md(c.Label), md(c.Dur)))
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s |\n", md(s.Name), md(s.Label), strings.Join(checks, ", "), md(s.Total))
		}
	}
	var failed []serviceView
	for _, s := range sv.Services {
		if s.Class == "failed" || s.Class == "unknown" {
			failed = append(failed, s)
		}
	}
	if sv.Total <= smokeTableMax {
		table(sv.Services)
		b.WriteByte('\n')
	} else {
		if len(failed) > 0 {
			b.WriteString("Failed:\n\n")
			table(failed)
			b.WriteByte('\n')
		}
		fmt.Fprintf(b, "<details><summary>All %d services</summary>\n\n", sv.Total)
		table(sv.Services)
		b.WriteString("\n</details>\n\n")
	}
	for _, s := range failed {
		if len(s.Log) == 0 {
			continue
		}
		fmt.Fprintf(b, "<details><summary>%s: the last lines of its log</summary>\n\n", html.EscapeString(s.Name))
		fence(b, s.Log)
		b.WriteString("\n</details>\n\n")
	}
}

func writeEvidenceNotes(b *bytes.Buffer, ev evidenceView) {
	b.WriteString("### Evidence\n\n")
	if ev.Empty != "" {
		fmt.Fprintf(b, "%s\n\n", md(ev.Empty))
		return
	}
	b.WriteString("| Image | Digest | Kind | Verified | Reason |\n| --- | --- | --- | --- | --- |\n")
	for _, e := range ev.Rows {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", md(e.Image), code(e.Digest), md(e.Kind), md(e.Label), md(e.Reason))
	}
	b.WriteByte('\n')
}

func writeDeployNotes(b *bytes.Buffer, dv deployView) {
	b.WriteString("### Deploy\n\n")
	if dv.Empty != "" {
		fmt.Fprintf(b, "%s\n\n", md(dv.Empty))
		return
	}
	target := ""
	if dv.Target != "" {
		target = " " + code(dv.Target)
	}
	fmt.Fprintf(b, "**%s** — %s%s. %d to create, %d to update, %d unchanged.\n\n", md(dv.Label), md(dv.Mode), target, dv.Create, dv.Update, dv.Unchanged)
	if dv.Message != "" {
		fence(b, strings.Split(dv.Message, "\n"))
		b.WriteByte('\n')
	}
	if len(dv.Changed) == 0 {
		return
	}
	b.WriteString("| App | Action | Changes | Outcome |\n| --- | --- | --- | --- |\n")
	for _, a := range dv.Changed {
		var ch []string
		for _, c := range a.Changes {
			ch = append(ch, fmt.Sprintf("%s: %s → %s", md(c.Path), orEmpty(md(c.Old)), orEmpty(md(c.New))))
		}
		changes := strings.Join(ch, "<br>")
		if changes == "" && a.Action == string(Create) {
			changes = "a new app"
		}
		outcome := md(a.Outcome)
		if a.Message != "" {
			outcome += " " + md(a.Message)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", md(a.ID), md(a.Action), changes, outcome)
	}
	b.WriteByte('\n')
}

func orEmpty(s string) string {
	if s == "" {
		return "∅"
	}
	return s
}
