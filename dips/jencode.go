package dips

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

const jsonDateTime = "2006-01-02 15:04:05"

// DecodeJSON reads DIRAC's JSON form (JEncode) as Python's json.loads
// does: objects keep their key order, integers stay integers of any size,
// the bare NaN, Infinity and -Infinity that Python writes are floats, and
// a lone surrogate \udc80-\udcff (Python's surrogateescape of a byte that
// is not UTF-8) is that byte again. {"__dCls": "dt"|"date"|"b64"} objects
// become time.Time, Date and string. It takes time linear in the data.
func DecodeJSON(data []byte) (any, error) {
	return DecodeJSONBefore(data, time.Time{})
}

// DecodeJSONBefore is DecodeJSON that gives up at deadline (zero: none).
func DecodeJSONBefore(data []byte, deadline time.Time) (any, error) {
	p := jparser{data: data, deadline: deadline}
	p.space()
	v, err := p.value(0)
	if err == nil {
		p.space()
		if p.pos < len(p.data) {
			err = fmt.Errorf("trailing data after the value at byte %d", p.pos)
		}
	}
	if err != nil {
		if errors.Is(err, ErrDeadline) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: JSON: %v", ErrDecode, err)
	}
	return v, nil
}

type jparser struct {
	data     []byte
	pos      int
	deadline time.Time
	values   int
	stack    itemStack
}

func (p *jparser) space() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jparser) errorf(format string, a ...any) error {
	return fmt.Errorf("at byte %d: %s", p.pos, fmt.Sprintf(format, a...))
}

func (p *jparser) literal(word string) bool {
	if bytes.HasPrefix(p.data[p.pos:], []byte(word)) {
		p.pos += len(word)
		return true
	}
	return false
}

func (p *jparser) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, p.errorf("nesting deeper than %d", maxDepth)
	}
	p.values++
	if p.values%checkEvery == 0 && !p.deadline.IsZero() && time.Now().After(p.deadline) {
		return nil, fmt.Errorf("%w (after %d values, at byte %d of %d)", ErrDeadline, p.values, p.pos, len(p.data))
	}
	if p.pos >= len(p.data) {
		return nil, p.errorf("unexpected end of data")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return p.str()
	case p.literal("true"):
		return true, nil
	case p.literal("false"):
		return false, nil
	case p.literal("null"):
		return nil, nil
	case p.literal("NaN"):
		return math.NaN(), nil
	case p.literal("Infinity"):
		return math.Inf(1), nil
	case p.literal("-Infinity"):
		return math.Inf(-1), nil
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	default:
		return nil, p.errorf("unexpected %q", c)
	}
}

func (p *jparser) array(depth int) (any, error) {
	p.pos++ // [
	from := p.stack.n
	fail := func(err error) (any, error) {
		p.stack.popFrom(from)
		return nil, err
	}
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return []any{}, nil
	}
	for {
		p.space()
		v, err := p.value(depth + 1)
		if err != nil {
			return fail(err)
		}
		p.stack.push(v)
		p.space()
		if p.pos >= len(p.data) {
			return fail(p.errorf("unexpected end of data in an array"))
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return p.stack.popFrom(from), nil
		default:
			return fail(p.errorf("want ',' or ']' in an array, got %q", p.data[p.pos]))
		}
	}
}

func (p *jparser) object(depth int) (any, error) {
	p.pos++ // {
	from := p.stack.n
	fail := func(err error) (any, error) {
		p.stack.popFrom(from)
		return nil, err
	}
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return jsonSpecial(&Dict{})
	}
	for {
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return fail(p.errorf("want a string key in an object"))
		}
		k, err := p.str()
		if err != nil {
			return fail(err)
		}
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return fail(p.errorf("want ':' after an object key"))
		}
		p.pos++
		p.space()
		v, err := p.value(depth + 1)
		if err != nil {
			return fail(err)
		}
		p.stack.push(k)
		p.stack.push(v)
		p.space()
		if p.pos >= len(p.data) {
			return fail(p.errorf("unexpected end of data in an object"))
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			// A repeated key: the last value, the first position, as Python.
			return jsonSpecial(dictOf(p.stack.popFrom(from)))
		default:
			return fail(p.errorf("want ',' or '}' in an object, got %q", p.data[p.pos]))
		}
	}
}

func (p *jparser) number() (any, error) {
	start := p.pos
	if p.data[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		n := 0
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	intStart := p.pos
	if digits() == 0 {
		return nil, p.errorf("a number without digits")
	}
	if p.data[intStart] == '0' && p.pos-intStart > 1 {
		return nil, p.errorf("a number with a leading zero")
	}
	isFloat := false
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		isFloat = true
		if digits() == 0 {
			return nil, p.errorf("a fraction without digits")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		isFloat = true
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return nil, p.errorf("an exponent without digits")
		}
	}
	text := string(p.data[start:p.pos])
	if !isFloat {
		return parseInt(text)
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !math.IsInf(f, 0) { // 1e400 is inf, as in Python
		return nil, p.errorf("bad number %q", clip(text))
	}
	return f, nil
}

// str reads a JSON string into the bytes it stands for: UTF-8, with a lone
// \udc80-\udcff turned back into its byte (surrogateescape) and any other
// lone surrogate kept as its 3-byte (WTF-8) form.
func (p *jparser) str() (string, error) {
	p.pos++ // "
	start := p.pos
	// The fast path: no escapes.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := string(p.data[start:p.pos])
			p.pos++
			return s, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.pos++
	}
	buf := append([]byte(nil), p.data[start:p.pos]...)
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(buf), nil
		case c < 0x20:
			return "", p.errorf("control character %#x in a string", c)
		case c != '\\':
			buf = append(buf, c)
			p.pos++
			continue
		}
		if p.pos+1 >= len(p.data) {
			break
		}
		esc := p.data[p.pos+1]
		p.pos += 2
		switch esc {
		case '"', '\\', '/':
			buf = append(buf, esc)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, err := p.hex4()
			if err != nil {
				return "", err
			}
			switch {
			case r >= 0xd800 && r < 0xdc00: // a high surrogate: a pair, or alone
				if p.pos+6 <= len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
					save := p.pos
					p.pos += 2
					r2, err := p.hex4()
					if err == nil && r2 >= 0xdc00 && r2 < 0xe000 {
						buf = utf8.AppendRune(buf, utf16.DecodeRune(r, r2))
						continue
					}
					p.pos = save
				}
				buf = appendSurrogate(buf, r)
			case r >= 0xdc80 && r <= 0xdcff:
				buf = append(buf, byte(r-0xdc00)) // surrogateescape
			case r >= 0xdc00 && r < 0xe000:
				buf = appendSurrogate(buf, r)
			default:
				buf = utf8.AppendRune(buf, r)
			}
		default:
			return "", p.errorf("bad escape \\%c", esc)
		}
	}
	return "", p.errorf("unterminated string")
}

func (p *jparser) hex4() (rune, error) {
	if p.pos+4 > len(p.data) {
		return 0, p.errorf("short \\u escape")
	}
	n, err := strconv.ParseUint(string(p.data[p.pos:p.pos+4]), 16, 32)
	if err != nil {
		return 0, p.errorf("bad \\u escape %q", p.data[p.pos:p.pos+4])
	}
	p.pos += 4
	return rune(n), nil
}

// appendSurrogate writes a lone surrogate as the three bytes UTF-8 would
// give it (WTF-8): Go strings hold bytes, and no byte stands for it.
func appendSurrogate(b []byte, r rune) []byte {
	return append(b, 0xe0|byte(r>>12), 0x80|byte(r>>6)&0x3f, 0x80|byte(r)&0x3f)
}

// jsonSpecial turns JEncode's tagged objects back into values.
func jsonSpecial(d *Dict) (any, error) {
	cls := d.String("__dCls")
	if cls == "" {
		return d, nil
	}
	obj := d.String("obj")
	switch cls {
	case "dt":
		t, err := time.Parse(jsonDateTime, obj)
		if err != nil {
			return nil, fmt.Errorf("datetime %q: %v", obj, err)
		}
		return t, nil
	case "date":
		t, err := time.Parse("2006-01-02", obj)
		if err != nil {
			return nil, fmt.Errorf("date %q: %v", obj, err)
		}
		return Date{t.Year(), int(t.Month()), t.Day()}, nil
	case "b64":
		b, err := base64.StdEncoding.DecodeString(obj)
		if err != nil {
			return nil, fmt.Errorf("b64 %q: %v", clip(obj), err)
		}
		return string(b), nil
	}
	return d, nil // JSerializable objects stay dicts
}

// EncodeJSON writes v as DIRAC v9's JEncode does (Python's json.dumps with
// its default separators and ensure_ascii): tuples become arrays, non-string
// keys become their JSON text, datetimes lose their microseconds.
func EncodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := jenc(&b, v, 0); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func jenc(b *bytes.Buffer, v any, depth int) error {
	if depth > maxDepth {
		return errors.New("dips: cannot encode: nesting too deep")
	}
	v, err := canonical(v)
	if err != nil {
		return err
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case *big.Int:
		b.WriteString(x.String())
	case float64:
		switch {
		case math.IsNaN(x):
			b.WriteString("NaN")
		case math.IsInf(x, 1):
			b.WriteString("Infinity")
		case math.IsInf(x, -1):
			b.WriteString("-Infinity")
		default:
			b.WriteString(FormatFloat(x))
		}
	case string:
		jstr(b, x)
	case []byte:
		return jenc(b, NewDict("__dCls", "b64", "obj", base64.StdEncoding.EncodeToString(x)), depth)
	case []any:
		return jseq(b, x, depth)
	case Tuple:
		return jseq(b, x, depth)
	case *Dict:
		b.WriteByte('{')
		if x != nil {
			for i, kv := range x.Items {
				if i > 0 {
					b.WriteString(", ")
				}
				k, err := jsonKey(kv.Key)
				if err != nil {
					return err
				}
				jstr(b, k)
				b.WriteString(": ")
				if err := jenc(b, kv.Value, depth+1); err != nil {
					return err
				}
			}
		}
		b.WriteByte('}')
	case time.Time:
		return jenc(b, NewDict("__dCls", "dt", "obj", x.UTC().Format(jsonDateTime)), depth)
	case Date:
		return jenc(b, NewDict("__dCls", "date", "obj", fmt.Sprintf("%04d-%02d-%02d", x.Year, x.Month, x.Day)), depth)
	case TimeOfDay:
		return errors.New("dips: JSON cannot encode a time of day (DIRAC's JEncode cannot either)")
	}
	return nil
}

func jseq(b *bytes.Buffer, items []any, depth int) error {
	b.WriteByte('[')
	for i, it := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		if err := jenc(b, it, depth+1); err != nil {
			return err
		}
	}
	b.WriteByte(']')
	return nil
}

// jsonKey mirrors json.dumps: str as is, int and float as text, True/False
// as "true"/"false", None as "null".
func jsonKey(k any) (string, error) {
	k, err := canonical(k)
	if err != nil {
		return "", err
	}
	switch x := k.(type) {
	case string:
		return x, nil
	case bool:
		if x {
			return "true", nil
		}
		return "false", nil
	case nil:
		return "null", nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case *big.Int:
		return x.String(), nil
	case float64:
		var b bytes.Buffer
		jenc(&b, x, 0)
		return b.String(), nil
	}
	return "", fmt.Errorf("dips: JSON keys must be str, int, float, bool or None, not %s", typeName(k))
}

// jstr writes a JSON string with ensure_ascii, as Python does. Bytes that
// are not UTF-8 become lone surrogates (\udcXX), Python's surrogateescape.
func jstr(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			fmt.Fprintf(b, `\udc%02x`, s[i])
			i++
			continue
		}
		i += size
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20 || r > 0x7e && r <= 0xffff:
				fmt.Fprintf(b, `\u%04x`, r)
			case r > 0xffff:
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// DecodeMixed decodes a message payload as DIRAC's MixedEncode does: DEncode
// first, and on any failure the same bytes as JSON (DIRAC v9 sends JSON).
func DecodeMixed(data []byte) (any, error) { return DecodeMixedBefore(data, time.Time{}) }

// DecodeMixedBefore is DecodeMixed that gives up at deadline (zero: none).
func DecodeMixedBefore(data []byte, deadline time.Time) (any, error) {
	v, _, derr := DecodeBefore(data, deadline)
	if derr == nil {
		return v, nil
	}
	if errors.Is(derr, ErrDeadline) {
		return nil, derr
	}
	v, jerr := DecodeJSONBefore(data, deadline)
	if jerr == nil {
		return v, nil
	}
	if errors.Is(jerr, ErrDeadline) {
		return nil, jerr
	}
	return nil, fmt.Errorf("%w (DEncode: %v; JSON: %v)", ErrDecode, strings.TrimPrefix(derr.Error(), ErrDecode.Error()+": "), strings.TrimPrefix(jerr.Error(), ErrDecode.Error()+": "))
}
