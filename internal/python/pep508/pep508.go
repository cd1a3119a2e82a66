// Package pep508 reads the parts of Python dependency specifiers (PEP 508)
// the pipeline meets: distribution names and environment markers. A
// marker is parsed into a tree, written back in one normal form, and
// evaluated for a target environment the way pypa's packaging does
// (version comparison through PEP 440 where both sides are versions,
// string comparison otherwise) — with the difference that a variable the
// target does not fix is an error rather than a guess.
package pep508

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/python/pep440"
)

var nameRE = regexp.MustCompile(`^(?i:[a-z0-9]|[a-z0-9][a-z0-9._-]*[a-z0-9])$`)

// MaxNameLen bounds a distribution name (PyPI's longest are far shorter).
const MaxNameLen = 200

// ValidName tells a valid distribution name.
func ValidName(s string) bool { return len(s) <= MaxNameLen && nameRE.MatchString(s) }

var separatorsRE = regexp.MustCompile(`[-_.]+`)

// Normalize is a distribution name as PEP 503 compares them (and as uv
// writes them): lower case, each run of -, _ and . one -.
func Normalize(name string) string {
	return strings.ToLower(separatorsRE.ReplaceAllString(name, "-"))
}

// Variables are the marker variables PEP 508 defines.
var Variables = []string{
	"python_version", "python_full_version", "os_name", "sys_platform", "platform_release",
	"platform_system", "platform_version", "platform_machine", "platform_python_implementation",
	"implementation_name", "implementation_version", "extra",
}

// fullVersionVars are the variables that hold a whole Python version
// (implementation_version is python_full_version on CPython).
var fullVersionVars = map[string]bool{"python_full_version": true, "implementation_version": true}

// Marker is a parsed environment marker.
type Marker struct{ root node }

type node interface {
	write(b *strings.Builder)
	eval(e *evaluation) (bool, error)
	visit(f func(*compare))
}

type boolOp struct {
	op   string // "and", "or"
	l, r node
}

type group struct{ n node }

type operand struct {
	variable string // "" for a literal
	value    string
}

type compare struct {
	l  operand
	op string
	r  operand
}

// MaxMarkerLen bounds a marker's text.
const MaxMarkerLen = 1000

// ParseMarker reads a marker (the text after a requirement's ";").
func ParseMarker(s string) (*Marker, error) {
	if len(s) > MaxMarkerLen {
		return nil, fmt.Errorf("marker longer than %d characters", MaxMarkerLen)
	}
	p := &parser{s: s}
	n, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if t := p.next(); t.kind != tEnd {
		return nil, fmt.Errorf("marker %q: unexpected %q at column %d", s, t.text, t.pos+1)
	}
	return &Marker{root: n}, nil
}

// String is the marker in normal form: single spaces, single quotes
// (double where the value holds one), parentheses as written.
func (m *Marker) String() string {
	var b strings.Builder
	m.root.write(&b)
	return b.String()
}

func (n boolOp) write(b *strings.Builder) {
	n.l.write(b)
	b.WriteString(" " + n.op + " ")
	n.r.write(b)
}

func (n group) write(b *strings.Builder) {
	b.WriteString("(")
	n.n.write(b)
	b.WriteString(")")
}

func (o operand) write(b *strings.Builder) {
	if o.variable != "" {
		b.WriteString(o.variable)
		return
	}
	q := "'"
	if strings.Contains(o.value, "'") {
		q = `"`
	}
	b.WriteString(q + o.value + q)
}

func (n compare) write(b *strings.Builder) {
	n.l.write(b)
	b.WriteString(" " + n.op + " ")
	n.r.write(b)
}

func (n boolOp) visit(f func(*compare)) { n.l.visit(f); n.r.visit(f) }
func (n group) visit(f func(*compare))  { n.n.visit(f) }
func (n *compare) visit(f func(*compare)) {
	f(n)
}

// Env is the environment a marker is evaluated for. Values are the
// variables it fixes; a marker using another is an error. Series, when set
// ("3.11"), stands for python_full_version and implementation_version:
// the target is any final release of that series (3.11.0, 3.11.1, …), and
// a marker whose value differs between them is an error.
type Env struct {
	Values map[string]string
	Series string
}

// Evaluate tells whether the marker holds in env.
func (m *Marker) Evaluate(env Env) (bool, error) {
	fulls, err := sampleFullVersions(m, env)
	if err != nil {
		return false, err
	}
	if fulls == nil {
		return m.root.eval(&evaluation{env: env})
	}
	holds := map[bool]string{} // a release for which the marker is true, one for false
	for _, full := range fulls {
		got, err := m.root.eval(&evaluation{env: env, full: full})
		if err != nil {
			return false, err
		}
		if _, ok := holds[got]; !ok {
			holds[got] = full
		}
	}
	if len(holds) > 1 {
		return false, fmt.Errorf("marker %q holds for Python %s but not for %s: it depends on which %s release the target has", m, holds[true], holds[false], env.Series)
	}
	_, ok := holds[true]
	return ok, nil
}

// sampleFullVersions are the Series releases at which a marker's value
// can change: the first and a very late one, and either side of every
// version a python_full_version clause names in that series. Each clause
// is constant between neighbouring samples, so the marker's value at the
// samples is its value for every release. nil when no clause uses a full
// version.
func sampleFullVersions(m *Marker, env Env) ([]string, error) {
	uses := false
	var ks []uint64
	var bad error
	var series []uint64
	if env.Series != "" {
		v, err := pep440.Parse(env.Series)
		if err != nil {
			return nil, fmt.Errorf("env series: %w", err)
		}
		_, series = v.Release()
	}
	m.root.visit(func(c *compare) {
		for _, side := range [][2]operand{{c.l, c.r}, {c.r, c.l}} {
			if !fullVersionVars[side[0].variable] {
				continue
			}
			uses = true
			if env.Series == "" {
				bad = fmt.Errorf("marker uses %s, which the target does not fix", side[0].variable)
				return
			}
			if side[1].variable != "" {
				continue // another variable: sampled through its own value
			}
			if c.op == "in" || c.op == "not in" {
				bad = fmt.Errorf("marker %q: %s %s %q compares text, which differs between %s releases", m, side[0].variable, c.op, side[1].value, env.Series)
				return
			}
			v, err := pep440.Parse(strings.TrimSuffix(side[1].value, ".*"))
			if err != nil {
				if c.op == "===" {
					continue // equal to no release's text
				}
				bad = fmt.Errorf("marker %q: %q is not a version to compare %s with", m, side[1].value, side[0].variable)
				return
			}
			epoch, rel := v.Release()
			if epoch != 0 || len(rel) < len(series) {
				continue
			}
			same := true
			for i := range series {
				same = same && rel[i] == series[i]
			}
			if !same {
				continue
			}
			k := uint64(0)
			if len(rel) > len(series) {
				k = rel[len(series)]
			}
			ks = append(ks, k)
		}
	})
	if bad != nil {
		return nil, bad
	}
	if !uses {
		return nil, nil
	}
	const late = 1 << 30
	zs := map[uint64]bool{0: true, late: true}
	for _, k := range ks {
		if k > 0 {
			zs[k-1] = true
		}
		if k < late {
			zs[k], zs[k+1] = true, true
		}
	}
	var out []string
	for z := range zs {
		out = append(out, env.Series+"."+strconv.FormatUint(z, 10))
	}
	sortVersions(out)
	return out, nil
}

func sortVersions(vs []string) {
	for i := 1; i < len(vs); i++ {
		for j := i; j > 0 && pep440.Compare(vs[j-1], vs[j]) > 0; j-- {
			vs[j-1], vs[j] = vs[j], vs[j-1]
		}
	}
}

type evaluation struct {
	env  Env
	full string // the python_full_version being tried
}

func (e *evaluation) value(o operand) (string, error) {
	if o.variable == "" {
		return o.value, nil
	}
	if fullVersionVars[o.variable] && e.full != "" {
		return e.full, nil
	}
	if o.variable == "extra" {
		return "", fmt.Errorf("marker uses extra, which only a requirement's extras set")
	}
	v, ok := e.env.Values[o.variable]
	if !ok {
		return "", fmt.Errorf("marker uses %s, which the target does not fix", o.variable)
	}
	return v, nil
}

func (n boolOp) eval(e *evaluation) (bool, error) {
	l, err := n.l.eval(e)
	if err != nil {
		return false, err
	}
	r, err := n.r.eval(e) // both sides: an error on either is an error
	if err != nil {
		return false, err
	}
	if n.op == "and" {
		return l && r, nil
	}
	return l || r, nil
}

func (n group) eval(e *evaluation) (bool, error) { return n.n.eval(e) }

// eval is packaging's _eval_op: a PEP 440 comparison when the operator and
// the right side make a specifier, else Python's string operators.
func (n *compare) eval(e *evaluation) (bool, error) {
	l, err := e.value(n.l)
	if err != nil {
		return false, err
	}
	r, err := e.value(n.r)
	if err != nil {
		return false, err
	}
	switch n.op {
	case "in":
		return strings.Contains(r, l), nil
	case "not in":
		return !strings.Contains(r, l), nil
	}
	if spec, err := pep440.ParseSpecifier(n.op, r); err == nil {
		if n.op == "===" {
			return strings.EqualFold(l, r), nil
		}
		v, err := pep440.Parse(l)
		if err != nil {
			return false, fmt.Errorf("%s %s %s: %q is not a version", n.l.show(), n.op, n.r.show(), l)
		}
		return spec.Contains(v), nil
	}
	switch n.op {
	case "==":
		return l == r, nil
	case "!=":
		return l != r, nil
	case "<":
		return l < r, nil
	case "<=":
		return l <= r, nil
	case ">":
		return l > r, nil
	case ">=":
		return l >= r, nil
	}
	return false, fmt.Errorf("%s %s %s: %s compares versions, and %q is not one", n.l.show(), n.op, n.r.show(), n.op, r)
}

func (o operand) show() string {
	var b strings.Builder
	o.write(&b)
	return b.String()
}

// The tokenizer and a recursive-descent parser of PEP 508's marker grammar:
//
//	marker_or   = marker_and ('or' marker_and)*
//	marker_and  = marker_expr ('and' marker_expr)*
//	marker_expr = marker_var marker_op marker_var | '(' marker_or ')'
//	marker_op   = version_cmp | 'in' | 'not' 'in'

type tokenKind int

const (
	tEnd tokenKind = iota
	tWord
	tString
	tOp
	tOpen
	tClose
	tBad
)

type token struct {
	kind tokenKind
	text string // a string's value without its quotes
	pos  int
}

type parser struct {
	s   string
	pos int
	tok *token // a token looked at, not yet taken
}

// maxDepth bounds nested parentheses.
const maxDepth = 32

// pyStrChars are what PEP 508 admits inside a quoted string, beside
// letters, digits and spaces (and the other quote).
const pyStrChars = "().{}-_*#:;,/?[]!~`@$%^&=+|<>"

func (p *parser) lex() token {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
	start := p.pos
	if p.pos >= len(p.s) {
		return token{kind: tEnd, pos: start}
	}
	c := p.s[p.pos]
	switch {
	case c == '(':
		p.pos++
		return token{kind: tOpen, text: "(", pos: start}
	case c == ')':
		p.pos++
		return token{kind: tClose, text: ")", pos: start}
	case c == '\'' || c == '"':
		end := strings.IndexByte(p.s[p.pos+1:], c)
		if end < 0 {
			p.pos = len(p.s)
			return token{kind: tBad, text: p.s[start:], pos: start}
		}
		val := p.s[p.pos+1 : p.pos+1+end]
		p.pos += end + 2
		for _, r := range val {
			if !(r == ' ' || r == '\'' || r == '"' || r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(pyStrChars, r))) {
				return token{kind: tBad, text: p.s[start:p.pos], pos: start}
			}
		}
		return token{kind: tString, text: val, pos: start}
	case strings.ContainsRune("<>=!~", rune(c)):
		for _, op := range []string{"===", "~=", "==", "!=", "<=", ">=", "<", ">"} {
			if strings.HasPrefix(p.s[p.pos:], op) {
				p.pos += len(op)
				return token{kind: tOp, text: op, pos: start}
			}
		}
		p.pos++
		return token{kind: tBad, text: string(c), pos: start}
	case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		for p.pos < len(p.s) && (p.s[p.pos] == '_' || p.s[p.pos] == '.' || p.s[p.pos] >= 'a' && p.s[p.pos] <= 'z' || p.s[p.pos] >= 'A' && p.s[p.pos] <= 'Z' || p.s[p.pos] >= '0' && p.s[p.pos] <= '9') {
			p.pos++
		}
		return token{kind: tWord, text: p.s[start:p.pos], pos: start}
	}
	p.pos++
	return token{kind: tBad, text: string(c), pos: start}
}

func (p *parser) peek() token {
	if p.tok == nil {
		t := p.lex()
		p.tok = &t
	}
	return *p.tok
}

func (p *parser) next() token {
	t := p.peek()
	p.tok = nil
	return t
}

func (p *parser) errorf(t token, format string, args ...any) error {
	what := fmt.Sprintf("%q", t.text)
	if t.kind == tEnd {
		what = "the end"
	}
	return fmt.Errorf("marker %q: %s at column %d: %s", p.s, fmt.Sprintf(format, args...), t.pos+1, what)
}

func (p *parser) or(depth int) (node, error) {
	l, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	for t := p.peek(); t.kind == tWord && t.text == "or"; t = p.peek() {
		p.next()
		r, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		l = boolOp{op: "or", l: l, r: r}
	}
	return l, nil
}

func (p *parser) and(depth int) (node, error) {
	l, err := p.expr(depth)
	if err != nil {
		return nil, err
	}
	for t := p.peek(); t.kind == tWord && t.text == "and"; t = p.peek() {
		p.next()
		r, err := p.expr(depth)
		if err != nil {
			return nil, err
		}
		l = boolOp{op: "and", l: l, r: r}
	}
	return l, nil
}

func (p *parser) expr(depth int) (node, error) {
	if t := p.peek(); t.kind == tOpen {
		if depth >= maxDepth {
			return nil, p.errorf(t, "more than %d nested parentheses", maxDepth)
		}
		p.next()
		n, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if t := p.next(); t.kind != tClose {
			return nil, p.errorf(t, "want )")
		}
		return group{n}, nil
	}
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	var op string
	switch t := p.next(); {
	case t.kind == tOp:
		op = t.text
	case t.kind == tWord && t.text == "in":
		op = "in"
	case t.kind == tWord && t.text == "not":
		if t2 := p.next(); t2.kind != tWord || t2.text != "in" {
			return nil, p.errorf(t2, "want in after not")
		}
		op = "not in"
	default:
		return nil, p.errorf(t, "want a comparison operator")
	}
	r, err := p.operand()
	if err != nil {
		return nil, err
	}
	return &compare{l: l, op: op, r: r}, nil
}

func (p *parser) operand() (operand, error) {
	t := p.next()
	switch t.kind {
	case tString:
		return operand{value: t.text}, nil
	case tWord:
		for _, v := range Variables {
			if t.text == v {
				return operand{variable: v}, nil
			}
		}
		return operand{}, p.errorf(t, "not a marker variable (%s)", strings.Join(Variables, ", "))
	case tBad:
		return operand{}, p.errorf(t, "not a quoted string PEP 508 admits")
	}
	return operand{}, p.errorf(t, "want a variable or a quoted string")
}
