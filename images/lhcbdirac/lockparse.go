package lhcbdirac

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/pytools"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/python/pep440"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/python/pep508"
)

// The lock's format, which ParseLock alone reads. Lines are LF-terminated
// UTF-8 without a byte-order mark, tabs or other control or invisible
// characters. Each line is one of:
//
//   - blank;
//   - a comment, "#" in the first column (with no --hash in it: a hash in
//     a comment pins nothing), or a "# lhcbdirac:" directive (section,
//     requirement, source-built, from-debian);
//   - an entry, in the first column, after a section directive:
//     name==version, then optionally " ; " and an environment marker, then
//     optionally --hash=sha256:<64 lowercase hex> tokens, then optionally a
//     trailing "\";
//   - after a line ending in "\": an indented line of --hash=sha256:<hex>
//     tokens, itself optionally ending in "\";
//   - after an entry, uv's annotations: an indented "# via …", or a bare
//     "# via" followed by indented "#   …" lines.
//
// The name is a PEP 508 name, kept in its PEP 503 normal form (what uv
// writes); the version a public PEP 440 version in normal form; the marker
// must be true for the image's Python. Nothing else is accepted: no
// options, no URL or path requirements, no extras, no operator but ==, no
// name twice in a section. What pip and uv receive is written from the
// entries (Pin.Requirement), never copied from the file.

// MaxLockSize bounds a lock file (LHCbDIRAC 12.0.21's is 350 KB).
const MaxLockSize = 16 << 20

// imageEnv is what markers are evaluated for: the image's CPython
// (pytools.PythonVersion, any patch release of it: Debian's or DIRACOS2's)
// on Linux (pytools.PythonPlatform's machine).
var imageEnv = func() pep508.Env {
	machine, _, _ := strings.Cut(pytools.PythonPlatform, "-")
	return pep508.Env{Series: pytools.PythonVersion, Values: map[string]string{
		"python_version": pytools.PythonVersion, "os_name": "posix", "sys_platform": "linux",
		"platform_system": "Linux", "platform_machine": machine,
		"platform_python_implementation": "CPython", "implementation_name": "cpython",
	}}
}()

// imageShown names imageEnv in errors.
var imageShown = "CPython " + pytools.PythonVersion + " on " + pytools.PythonPlatform

var (
	hexRE        = regexp.MustCompile(`^[0-9a-fA-F]*$`)
	entryNameRE  = regexp.MustCompile(`^[A-Za-z0-9._-]+`)
	debianPkgRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	directiveRE  = regexp.MustCompile(`^# lhcbdirac:([a-z-]*)(?: (.*))?$`)
	requireRE    = regexp.MustCompile(`^([A-Za-z0-9._-]+)(\[[A-Za-z0-9._,-]+\])?==(\S+)$`)
	viaRE        = regexp.MustCompile(`^# via(?: (.*\S))?$`)
	viaItemRE    = regexp.MustCompile(`^#   \S`)
	installerOpt = regexp.MustCompile(`^--?[A-Za-z]`)
)

// lockError is one refused line.
type lockError struct {
	file string
	line int
	msg  string
}

func (e *lockError) Error() string {
	if e.line == 0 {
		return e.file + ": " + e.msg
	}
	return fmt.Sprintf("%s:%d: %s", e.file, e.line, e.msg)
}

// shown quotes a line (or part of one) for an error, cut to a readable length.
func shown(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// checkChars refuses what a reader cannot see or a tool may read otherwise
// than the parser: invalid UTF-8, CR, tabs, control, format (bidi,
// zero-width) and separator characters.
func checkChars(line string) string {
	if !utf8.ValidString(line) {
		return "not valid UTF-8"
	}
	for i, r := range line {
		switch {
		case r == '\r' && i == len(line)-1:
			return "ends in CR LF: the lock's lines end in LF alone"
		case r == '\t':
			return "holds a tab: indent with spaces"
		case r == '\uFEFF':
			return "holds a byte-order mark"
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return fmt.Sprintf("holds the control character %U", r)
		case unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r):
			return fmt.Sprintf("holds the invisible character %U", r)
		}
	}
	return ""
}

// lockParser is ParseLock's state.
type lockParser struct {
	file string
	l    *Lock

	section string
	seen    map[string]int  // directives (and sections) met, by line
	cur     *Pin            // the entry being read, nil outside one
	hashes  map[string]bool // the entry's, to refuse one twice
	cont    int             // the line that ended in "\", 0 if none
	via     int             // 1: the entry's annotations may follow; 2: within a bare "# via" block
	names   map[string]map[string]int
	debian  map[string]int
	reqLine int
}

func (p *lockParser) fail(n int, format string, args ...any) error {
	return &lockError{file: p.file, line: n, msg: fmt.Sprintf(format, args...)}
}

// ParseLock reads a lock; name (a file name) is used in errors, each of
// which names the line and what is wrong with it.
func ParseLock(name string, b []byte) (*Lock, error) {
	p := &lockParser{file: name, l: &Lock{Raw: b}, seen: map[string]int{}, names: map[string]map[string]int{}, debian: map[string]int{}}
	if len(b) > MaxLockSize {
		return nil, p.fail(0, "%d bytes: a lock is at most %d", len(b), MaxLockSize)
	}
	text := string(b)
	if strings.HasPrefix(text, "\uFEFF") {
		return nil, p.fail(1, "starts with a byte-order mark: save the lock as UTF-8 without one")
	}
	lines := strings.Split(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, line := range lines {
		if err := p.line(i+1, line); err != nil {
			return nil, err
		}
	}
	if p.cont != 0 {
		return nil, p.fail(p.cont, "ends in \\ but the lock ends there: a --hash line must follow")
	}
	p.end()
	return p.l, p.check()
}

func (p *lockParser) line(n int, line string) error {
	if msg := checkChars(line); msg != "" {
		return p.fail(n, "%s", msg)
	}
	trimmed := strings.TrimLeft(line, " ")
	indented := trimmed != line
	if p.cont != 0 {
		if strings.TrimSpace(line) == "" {
			return p.fail(p.cont, "ends in \\ but line %d is blank: a --hash line must follow", n)
		}
		if strings.HasPrefix(trimmed, "#") {
			return p.fail(p.cont, "ends in \\ but line %d is a comment: a --hash line must follow", n)
		}
		if !indented {
			return p.fail(n, "continues line %d (which ends in \\) but is not indented: indent its --hash with spaces", p.cont)
		}
		p.cont = 0
		return p.options(n, trimmed, true)
	}
	switch {
	case strings.TrimSpace(line) == "":
		p.end()
	case indented && strings.HasPrefix(trimmed, "#"):
		return p.annotation(n, trimmed)
	case indented:
		return p.fail(n, "an indented line that continues nothing (the line before does not end in \\): %s", shown(line))
	case strings.HasPrefix(line, "#"):
		p.end()
		if strings.HasPrefix(line, "# lhcbdirac:") {
			return p.directive(n, line)
		}
		if strings.Contains(line, "--hash") {
			return p.fail(n, "a --hash in a comment pins nothing: put hashes on the entry's continuation lines")
		}
	default:
		p.end()
		return p.entry(n, line)
	}
	return nil
}

// end closes the entry being read.
func (p *lockParser) end() {
	if p.cur == nil {
		return
	}
	switch p.section {
	case "runtime":
		p.l.Runtime = append(p.l.Runtime, *p.cur)
	case "build":
		p.l.Build = append(p.l.Build, *p.cur)
	}
	p.cur, p.via = nil, 0
}

// annotation is an indented comment: uv's "# via" lines, under an entry.
func (p *lockParser) annotation(n int, c string) error {
	if strings.Contains(c, "--hash") {
		return p.fail(n, "a --hash in a comment pins nothing: put hashes on the entry's continuation lines")
	}
	if p.cur == nil || p.via == 0 {
		return p.fail(n, "an indented comment outside an entry's annotations: %s", shown(c))
	}
	if m := viaRE.FindStringSubmatch(c); m != nil {
		if p.via == 2 {
			return p.fail(n, "a second '# via' in one entry's annotations")
		}
		p.via = 1
		if m[1] == "" {
			p.via = 2
		}
		return nil
	}
	if p.via == 2 && viaItemRE.MatchString(c) {
		return nil
	}
	return p.fail(n, "an indented comment that is not uv's '# via' annotation: %s", shown(c))
}

func (p *lockParser) directive(n int, line string) error {
	m := directiveRE.FindStringSubmatch(line)
	if m == nil {
		return p.fail(n, "not a directive: %s (want '# lhcbdirac:KEY VALUE')", shown(line))
	}
	key, val := m[1], strings.TrimRight(m[2], " ")
	once := key
	if key == "section" {
		once = "section " + val
	}
	if key != "from-debian" {
		if first, ok := p.seen[once]; ok {
			return p.fail(n, "a second '# lhcbdirac:%s' (the first is line %d)", once, first)
		}
		p.seen[once] = n
	}
	switch key {
	case "section":
		if val != "runtime" && val != "build" {
			return p.fail(n, "unknown section %q (runtime or build)", val)
		}
		p.section = val
	case "requirement":
		r := requireRE.FindStringSubmatch(val)
		if r == nil || !pep508.ValidName(r[1]) {
			return p.fail(n, "requirement %s: want NAME[EXTRAS]==VERSION", shown(val))
		}
		if v, err := pep440.Parse(r[3]); err != nil || v.Local() != "" {
			return p.fail(n, "requirement %s: %q is not a public PEP 440 version", shown(val), r[3])
		}
		p.l.Requirement, p.reqLine = val, n
	case "source-built":
		for _, s := range strings.Fields(val) {
			if !pep508.ValidName(s) {
				return p.fail(n, "source-built: %s is not a distribution name", shown(s))
			}
			p.l.SourceBuilt = append(p.l.SourceBuilt, pep508.Normalize(s))
		}
	case "from-debian":
		f := strings.Fields(val)
		if len(f) != 2 || !pep508.ValidName(f[0]) || !debianPkgRE.MatchString(f[1]) {
			return p.fail(n, "from-debian %s: want DISTRIBUTION DEBIAN-PACKAGE", shown(val))
		}
		p.debian[pep508.Normalize(f[0])] = n
	default:
		return p.fail(n, "unknown directive '# lhcbdirac:%s' (section, requirement, source-built, from-debian)", key)
	}
	return nil
}

// entry reads name==version[ ; marker][ --hash=…][ \].
func (p *lockParser) entry(n int, line string) error {
	if installerOpt.MatchString(line) {
		opt, _, _ := strings.Cut(line, " ")
		opt, _, _ = strings.Cut(opt, "=")
		return p.fail(n, "option %s: a lock holds name==version entries, no installer options (the pipeline chooses the index and how to install)", opt)
	}
	if p.section == "" {
		return p.fail(n, "an entry before any '# lhcbdirac:section': %s", shown(line))
	}
	if strings.HasSuffix(line, " ") {
		if strings.HasSuffix(strings.TrimRight(line, " "), "\\") {
			return p.fail(n, "spaces after the final \\: pip would not read the next line as its continuation")
		}
		return p.fail(n, "ends in spaces")
	}
	if strings.ContainsAny(line, "#$") {
		return p.fail(n, "holds %q: pip reads ' #' as a comment and ${…} as a variable; neither belongs in an entry", string(line[strings.IndexAny(line, "#$")]))
	}
	if body, ok := strings.CutSuffix(line, "\\"); ok {
		line, p.cont = body, n
	}
	// pip's own split: the requirement ends at the first word that starts
	// with "-"; the rest are options.
	req, opts := line, ""
	words := strings.Split(line, " ")
	for i, w := range words {
		if strings.HasPrefix(w, "-") {
			req, opts = strings.Join(words[:i], " "), strings.Join(words[i:], " ")
			break
		}
	}
	pin, err := p.requirement(n, strings.TrimRight(req, " "))
	if err != nil {
		return err
	}
	pin.Line = n
	if first, ok := p.names[p.section][pin.Name]; ok {
		return p.fail(n, "%s is pinned twice in the %s section (the first is line %d)", pin.Name, p.section, first)
	}
	if p.names[p.section] == nil {
		p.names[p.section] = map[string]int{}
	}
	p.names[p.section][pin.Name] = n
	p.cur, p.via, p.hashes = pin, 1, map[string]bool{}
	return p.options(n, opts, false)
}

// requirement reads name==version[ ; marker].
func (p *lockParser) requirement(n int, req string) (*Pin, error) {
	pinText, marker, hasMarker := strings.Cut(req, ";")
	pinText = strings.TrimRight(pinText, " ")
	name := entryNameRE.FindString(pinText)
	rest := pinText[len(name):]
	if name == "" || !pep508.ValidName(name) {
		return nil, p.fail(n, "%s: not a distribution name", shown(req))
	}
	switch {
	case strings.HasPrefix(strings.TrimLeft(rest, " "), "@"):
		return nil, p.fail(n, "%s: a URL or path requirement; a lock installs from the index, by name==version", shown(req))
	case strings.HasPrefix(rest, " "):
		return nil, p.fail(n, "%s: write name==version, without spaces", shown(req))
	case strings.HasPrefix(rest, "["):
		return nil, p.fail(n, "%s: extras in an entry (a lock installs without dependencies, so an extra selects nothing; uv writes none)", shown(req))
	case strings.HasPrefix(rest, "==="):
		return nil, p.fail(n, "%s: === (arbitrary equality) is not a PEP 440 pin: write name==version", shown(req))
	case !strings.HasPrefix(rest, "=="):
		return nil, p.fail(n, "%s is not pinned with == (a lock pins every distribution)", shown(req))
	}
	ver := rest[2:]
	switch {
	case ver == "":
		return nil, p.fail(n, "%s: no version after ==", shown(req))
	case strings.Contains(ver, "*"):
		return nil, p.fail(n, "%s: ==%s is a wildcard, not a pin", shown(req), ver)
	}
	v, err := pep440.Parse(ver)
	if err != nil {
		return nil, p.fail(n, "%s: %v", shown(req), err)
	}
	if v.Local() != "" {
		return nil, p.fail(n, "%s: %s is a local version, which no index serves", shown(req), ver)
	}
	if !v.Normal() {
		return nil, p.fail(n, "%s: write the version as %s (its PEP 440 normal form, as uv writes it)", shown(req), v)
	}
	pin := &Pin{Name: pep508.Normalize(name), Version: ver}
	if hasMarker {
		marker = strings.Trim(marker, " ")
		if marker == "" {
			return nil, p.fail(n, "%s: nothing after ;", shown(req))
		}
		m, err := pep508.ParseMarker(marker)
		if err != nil {
			return nil, p.fail(n, "%v", err)
		}
		ok, err := m.Evaluate(imageEnv)
		if err != nil {
			return nil, p.fail(n, "%v (the image is %s)", err, imageShown)
		}
		if !ok {
			return nil, p.fail(n, "marker %q is never true for the image (%s): the entry would install nothing", m, imageShown)
		}
		pin.Marker = m.String()
	}
	return pin, nil
}

// options reads the --hash=sha256:<hex> tokens after an entry or on its
// continuation lines.
func (p *lockParser) options(n int, text string, continuation bool) error {
	if continuation {
		if strings.HasSuffix(text, " ") {
			return p.fail(n, "ends in spaces")
		}
		if body, ok := strings.CutSuffix(text, "\\"); ok {
			text, p.cont = body, n
		}
	}
	words := strings.Fields(text)
	if continuation && len(words) == 0 {
		return p.fail(n, "a continuation line with no --hash")
	}
	for _, w := range words {
		h, err := hashOf(w)
		if err != nil {
			return p.fail(n, "%v", err)
		}
		if p.hashes[h] {
			return p.fail(n, "%s lists sha256:%s twice", p.cur.Name, h)
		}
		p.hashes[h] = true
		p.cur.Hashes = append(p.cur.Hashes, h)
	}
	return nil
}

// hashOf reads one --hash=sha256:<64 lowercase hex>.
func hashOf(w string) (string, error) {
	if !strings.HasPrefix(w, "-") {
		return "", fmt.Errorf("%s: only --hash=sha256:<hex> may follow a requirement or continue it", shown(w))
	}
	opt, val, hasVal := strings.Cut(w, "=")
	if opt != "--hash" {
		return "", fmt.Errorf("option %s: an entry carries only --hash=sha256:<hex> (the pipeline chooses the index and how to install)", opt)
	}
	if !hasVal {
		return "", fmt.Errorf("%s: write --hash=sha256:<hex>", shown(w))
	}
	alg, hex, ok := strings.Cut(val, ":")
	if !ok {
		return "", fmt.Errorf("%s: write --hash=sha256:<hex>", shown(w))
	}
	if alg != "sha256" {
		return "", fmt.Errorf("%s: a lock pins by sha256 (uv writes only sha256)", shown(w))
	}
	switch {
	case !hexRE.MatchString(hex):
		return "", fmt.Errorf("%s: not hexadecimal", shown(w))
	case len(hex) != 64:
		return "", fmt.Errorf("%s: %d hex digits, a sha256 has 64", shown(w), len(hex))
	case strings.ToLower(hex) != hex:
		return "", fmt.Errorf("%s: write the hex in lower case (pip compares it as text)", shown(w))
	}
	return hex, nil
}

// check is what holds across the lock.
func (p *lockParser) check() error {
	l := p.l
	for _, pin := range append(slices.Clone(l.Runtime), l.Build...) {
		if len(pin.Hashes) == 0 {
			return p.fail(pin.Line, "%s==%s has no sha256 hash (a lock pins every distribution by hash)", pin.Name, pin.Version)
		}
	}
	if len(l.Runtime) == 0 {
		return p.fail(0, "no '# lhcbdirac:section runtime' with distributions: not an lhcbdirac lock (make one with go run mage.go lock VERSION)")
	}
	for _, want := range []string{"lhcbdirac", "dirac"} {
		if _, ok := l.Find(want); !ok {
			return p.fail(0, "the lock does not install %s", want)
		}
	}
	for _, s := range l.SourceBuilt {
		if _, ok := l.Find(s); !ok {
			return p.fail(p.seen["source-built"], "source-built %s is not in the runtime section", s)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.debian)) {
		if pin, ok := l.Find(name); ok {
			return p.fail(pin.Line, "%s is pinned in the runtime section, but line %d takes it from Debian", name, p.debian[name])
		}
	}
	for _, b := range l.Build {
		if r, ok := l.Find(b.Name); ok && r.Version != b.Version {
			return p.fail(b.Line, "the build section pins %s==%s, but the runtime section (line %d) pins %s (the build tools are resolved with the runtime as constraints)", b.Name, b.Version, r.Line, r.Version)
		}
	}
	if l.Requirement != "" {
		r := requireRE.FindStringSubmatch(l.Requirement)
		pin, ok := l.Find(r[1])
		if !ok {
			return p.fail(p.reqLine, "the lock is for %s, but its runtime section does not pin %s", l.Requirement, pep508.Normalize(r[1]))
		}
		if !pep440.Same(pin.Version, r[3]) {
			return p.fail(p.reqLine, "the lock is for %s, but its runtime section pins %s==%s (line %d)", l.Requirement, pin.Name, pin.Version, pin.Line)
		}
	}
	return nil
}
