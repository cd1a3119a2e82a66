package dips

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// parsePy reads the Python literals the vector file uses in python_repr
// (py3, and py2's u” and 123L), into the Go values Decode produces, so that
// tests compare meaning rather than formatting.
func parsePy(s string) (any, error) {
	p := &pyParser{s: s}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.i != len(p.s) {
		return nil, fmt.Errorf("trailing %q", p.s[p.i:])
	}
	return v, nil
}

type pyParser struct {
	s string
	i int
}

func (p *pyParser) ws() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\n') {
		p.i++
	}
}

func (p *pyParser) eat(tok string) bool {
	p.ws()
	if strings.HasPrefix(p.s[p.i:], tok) {
		p.i += len(tok)
		return true
	}
	return false
}

func (p *pyParser) value() (any, error) {
	p.ws()
	if p.i >= len(p.s) {
		return nil, fmt.Errorf("unexpected end")
	}
	switch {
	case p.eat("None"):
		return nil, nil
	case p.eat("True"):
		return true, nil
	case p.eat("False"):
		return false, nil
	case p.eat("inf"):
		return math.Inf(1), nil
	case p.eat("-inf"):
		return math.Inf(-1), nil
	case p.eat("nan"):
		return math.NaN(), nil
	case p.eat("datetime.datetime("):
		f, err := p.ints(")")
		if err != nil {
			return nil, err
		}
		for len(f) < 7 {
			f = append(f, 0)
		}
		return time.Date(f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], f[6]*1000, time.UTC), nil
	case p.eat("datetime.date("):
		f, err := p.ints(")")
		if err != nil {
			return nil, err
		}
		return Date{f[0], f[1], f[2]}, nil
	case p.eat("datetime.time("):
		f, err := p.ints(")")
		if err != nil {
			return nil, err
		}
		for len(f) < 4 {
			f = append(f, 0)
		}
		return TimeOfDay{f[0], f[1], f[2], f[3]}, nil
	}
	c := p.s[p.i]
	switch {
	case c == '[':
		p.i++
		items, err := p.items("]")
		if items == nil {
			items = []any{}
		}
		return items, err
	case c == '(':
		p.i++
		items, err := p.items(")")
		return Tuple(items), err
	case c == '{':
		p.i++
		d := &Dict{}
		for !p.eat("}") {
			k, err := p.value()
			if err != nil {
				return nil, err
			}
			if !p.eat(":") {
				return nil, fmt.Errorf("want ':' at %d", p.i)
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			d.Set(k, v)
			p.eat(",")
		}
		return d, nil
	case c == '\'' || c == '"' || c == 'u' || c == 'b':
		if c == 'u' || c == 'b' {
			p.i++
		}
		return p.str()
	default:
		return p.number()
	}
}

func (p *pyParser) items(end string) ([]any, error) {
	var items []any
	for !p.eat(end) {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		items = append(items, v)
		p.eat(",")
	}
	return items, nil
}

func (p *pyParser) ints(end string) ([]int, error) {
	items, err := p.items(end)
	if err != nil {
		return nil, err
	}
	out := make([]int, len(items))
	for i, it := range items {
		n, ok := Int(it)
		if !ok {
			return nil, fmt.Errorf("not an int: %v", it)
		}
		out[i] = int(n)
	}
	return out, nil
}

func (p *pyParser) number() (any, error) {
	start := p.i
	for p.i < len(p.s) && strings.IndexByte("+-0123456789.eE", p.s[p.i]) >= 0 {
		p.i++
	}
	text := p.s[start:p.i]
	if p.i < len(p.s) && p.s[p.i] == 'L' { // py2 long
		p.i++
	}
	if text == "" {
		return nil, fmt.Errorf("unexpected %q at %d", p.s[p.i:], p.i)
	}
	if strings.ContainsAny(text, ".eE") || text == "inf" {
		return strconv.ParseFloat(text, 64)
	}
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		return n, nil
	}
	n, ok := new(big.Int).SetString(text, 10)
	if !ok {
		return nil, fmt.Errorf("bad int %q", text)
	}
	return n, nil
}

// str reads a quoted string. \udcXX (surrogateescape) stands for the raw
// byte XX, as DIRAC's decoder keeps it.
func (p *pyParser) str() (any, error) {
	q := p.s[p.i]
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == q:
			p.i++
			return b.String(), nil
		case c == '\\':
			p.i++
			e := p.s[p.i]
			p.i++
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '\\', '\'', '"':
				b.WriteByte(e)
			case 'x', 'u', 'U':
				n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
				r, err := strconv.ParseUint(p.s[p.i:p.i+n], 16, 32)
				if err != nil {
					return nil, err
				}
				p.i += n
				switch {
				case r >= 0xdc80 && r <= 0xdcff:
					b.WriteByte(byte(r - 0xdc00))
				default:
					b.WriteRune(rune(r))
				}
			default:
				return nil, fmt.Errorf("escape \\%c", e)
			}
		default:
			r, size := utf8.DecodeRuneInString(p.s[p.i:])
			b.WriteRune(r)
			p.i += size
		}
	}
	return nil, fmt.Errorf("unterminated string")
}

// equalValues compares decoded values: dicts regardless of order (py2 peers
// sort keys), floats exactly unless tol > 0, NaN equal to NaN.
func equalValues(a, b any, tol float64) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		if !ok {
			return false
		}
		if math.IsNaN(x) || math.IsNaN(y) {
			return math.IsNaN(x) && math.IsNaN(y)
		}
		return x == y || tol > 0 && math.Abs(x-y) <= tol*math.Max(1, math.Abs(x))
	case []any:
		y, ok := b.([]any)
		return ok && equalSeq(x, y, tol)
	case Tuple:
		y, ok := b.(Tuple)
		return ok && equalSeq(x, y, tol)
	case *Dict:
		y, ok := b.(*Dict)
		if !ok || x.Len() != y.Len() {
			return false
		}
		for _, kv := range x.Items {
			v, ok := y.Get(kv.Key)
			if !ok || !equalValues(kv.Value, v, tol) {
				return false
			}
		}
		return true
	case *big.Int:
		y, ok := b.(*big.Int)
		return ok && x.Cmp(y) == 0
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	}
	return a == b
}

func equalSeq(a, b []any, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !equalValues(a[i], b[i], tol) {
			return false
		}
	}
	return true
}
