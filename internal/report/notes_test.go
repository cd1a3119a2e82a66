package report

import (
	"bytes"
	"strings"
	"testing"
)

// cells counts a table row's cells as GFM does: pipes not escaped by a
// backslash (an escaped backslash before a pipe does not escape it).
func cells(row string) int {
	n, esc := 0, false
	for _, r := range row {
		switch {
		case esc:
			esc = false
		case r == '\\':
			esc = true
		case r == '|':
			n++
		}
	}
	return n - 1
}

func TestMarkdownTablesSurviveHostileNames(t *testing.T) {
	rel := Release{Version: "v1|2", Lock: LockInput{Current: []Distribution{{Name: "a|b`c\\", Version: "1|0"}}, PreviousRelease: "v0", Previous: []Distribution{{Name: "x", Version: "1"}}},
		Smoke:    []Service{{Name: "Sys/Svc|`x`\\|<b>", Checks: []Check{{Name: "c|d", Outcome: Failed, Reason: "r|r"}}, Log: []string{"```", "````x", "| not a table"}}},
		Images:   []Image{{Name: "img|1", Ref: "reg/img@sha256:ab|cd"}},
		Deploy:   Deploy{Outcome: Deployed, Apps: []AppPlan{{ID: "/a|b", Action: Update, Changes: []FieldChange{{Path: "env.X|Y", Old: "`", New: "<br>"}}}}},
		Evidence: []Evidence{{Image: "img|1", Kind: "k|k", Reason: "\\"}},
	}
	var b bytes.Buffer
	v := (&Renderer{}).build(rel)
	writeNotes(&b, v)
	lines := strings.Split(b.String(), "\n")
	header := 0
	for i, l := range lines {
		if !strings.HasPrefix(l, "|") {
			header = 0
			continue
		}
		if header == 0 {
			header = cells(l)
			continue
		}
		if n := cells(l); n != header {
			t.Errorf("line %d has %d cells, its table %d: %s", i+1, n, header, l)
		}
	}
	if strings.Contains(b.String(), "<b>") || strings.Contains(b.String(), "→ <br>") {
		t.Errorf("markup from the input survived:\n%s", b.String())
	}
	// the log's fence is longer than any run of backticks in it
	if !strings.Contains(b.String(), "`````text\n```\n````x\n| not a table\n`````\n") {
		t.Errorf("log fence:\n%s", b.String())
	}
}

func TestMarkdownEscape(t *testing.T) {
	for in, want := range map[string]string{
		"a|b":             `a\|b`,
		"`code`":          "\\`code\\`",
		"<b>&amp;":        "&lt;b&gt;&amp;amp;",
		"*x* _y_ [l](u)":  `\*x\* \_y\_ \[l\](u)`,
		"$x$ ~~s~~ #1 !x": `\$x\$ \~\~s\~\~ \#1 \!x`,
		"back\\slash":     `back\\slash`,
		"two\nlines":      "two lines",
		"12.0.21":         "12.0.21",
	} {
		if got := md(in); got != want {
			t.Errorf("md(%q) = %q, want %q", in, got, want)
		}
	}
	if code("sha256:abc") != "`sha256:abc`" || code("a`b") != "a\\`b" || code("") != "—" || code("a|b") != `a\|b` {
		t.Error("code spans only for plain tokens")
	}
}
