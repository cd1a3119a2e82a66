package report

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestVisible(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, ünïcode ✓": "plain text, ünïcode ✓",
		"nul\x00":               `nul\x00`,
		"\x1b[31mred\x1b[0m":    `\x1b[31mred\x1b[0m`,
		"a\rb":                  `a\rb`,
		"a\nb":                  `a\nb`,
		"tab\there":             "tab\there",
		"del\x7f":               `del\x7f`,
		"c1\u0085":              `c1\u0085`,
		"bidi \u202egnp.exe":    `bidi \u202egnp.exe`,
		"isolate \u2066x\u2069": `isolate \u2066x\u2069`,
		"bad \xff\xfe utf8":     "bad \uFFFD\uFFFD utf8",
		"<script>&amp;\"'":      "<script>&amp;\"'", // escaping is the template's job
	} {
		if got := Visible(in); got != want {
			t.Errorf("Visible(%q) = %q, want %q", in, got, want)
		}
	}
	if got := visible("line 1\r\nline 2\n\x1b", true); got != "line 1\nline 2\n\\x1b" {
		t.Errorf("multi-line: %q", got)
	}
}

func TestRedactText(t *testing.T) {
	for in, want := range map[string]string{
		"fatal: unable to access 'https://robot:T0KEN@git.example.org/lhcb/DIRAC.git/': 403": "fatal: unable to access 'https://git.example.org/lhcb/DIRAC.git/': 403",
		"two: http://a:b@h1/x and ssh://git@h2/y":                                            "two: http://h1/x and ssh://h2/y",
		"no url here":                    "no url here",
		"https://host/path@not-userinfo": "https://host/path@not-userinfo",
		"broken https://u:TOK EN@host/x": "broken https://u:TOK EN@host/x", // a space ends the URL: "TOK" alone is no authority
		"end https://u:p@host":           "end https://host",
	} {
		if got := RedactText(in); got != want {
			t.Errorf("RedactText(%q) = %q, want %q", in, got, want)
		}
	}
}

// Every string field of a Release, found by reflection: the test fills
// them all, so a field added later is covered without being listed.
func fillStrings(v reflect.Value, s string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			return
		}
		for i := 0; i < v.NumField(); i++ {
			fillStrings(v.Field(i), s)
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		}
		for i := 0; i < v.Len(); i++ {
			fillStrings(v.Index(i), s)
		}
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fillStrings(v.Elem(), s)
	}
}

func stringsOf(v reflect.Value, f func(path, s string), path string) {
	switch v.Kind() {
	case reflect.String:
		f(path, v.String())
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			return
		}
		for i := 0; i < v.NumField(); i++ {
			stringsOf(v.Field(i), f, path+"."+v.Type().Field(i).Name)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			stringsOf(v.Index(i), f, path+"[]")
		}
	case reflect.Pointer:
		if !v.IsNil() {
			stringsOf(v.Elem(), f, path)
		}
	}
}

const secretURL = "https://robot:s3cr3t-T0KEN@git.example.org/x.git"

func TestCleanCoversEveryField(t *testing.T) {
	var r Release
	fillStrings(reflect.ValueOf(&r).Elem(), "a\x1b[1m "+secretURL+" s3cr3t-T0KEN")
	before := r.Smoke[0].Name
	c := clean(r)
	if r.Smoke[0].Name != before || r.Hotfixes[0].Repository != before {
		t.Fatal("clean changed its input")
	}
	n := 0
	stringsOf(reflect.ValueOf(c), func(path, s string) {
		n++
		if strings.Contains(s, "s3cr3t") || strings.Contains(s, "robot") || strings.Contains(s, "\x1b") {
			t.Errorf("%s not cleaned: %q", path, s)
		}
	}, "Release")
	if n < 40 {
		t.Fatalf("only %d strings seen: the walk is broken", n)
	}
}

func TestCleanBounds(t *testing.T) {
	var r Release
	r.Smoke = make([]Service, 3)
	var log []string
	for i := range 500 {
		log = append(log, strings.Repeat("x", i))
	}
	r.Smoke[0].Log = log
	r.Result.Error = strings.Repeat("é", MaxTextRunes+10)
	c := clean(r)
	if got := c.Smoke[0].Log; len(got) != MaxLogLines || got[0] != log[500-MaxLogLines] || got[MaxLogLines-1] != log[499] {
		t.Errorf("log: %d lines kept, want the last %d", len(got), MaxLogLines)
	}
	if !strings.HasSuffix(c.Result.Error, "… (10 more characters)") || !strings.HasPrefix(c.Result.Error, "éé") {
		t.Errorf("a long text is cut with a note: …%q", c.Result.Error[len(c.Result.Error)-40:])
	}
	if len(r.Smoke[0].Log) != 500 {
		t.Error("clean changed its input")
	}
}
