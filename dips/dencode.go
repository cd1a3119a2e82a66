package dips

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"
	"strconv"
	"time"
)

// ErrDecode is wrapped by every decoding error.
var ErrDecode = errors.New("dips: cannot decode")

// maxDepth bounds nesting so that a hostile "llll…" cannot exhaust the stack.
const maxDepth = 512

func decodeErr(pos int, format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrDecode, pos, fmt.Sprintf(format, args...))
}

// Encode serializes v in DEncode.
func Encode(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := encode(&b, v, 0); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func encode(b *bytes.Buffer, v any, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("dips: cannot encode: nesting deeper than %d", maxDepth)
	}
	switch x := v.(type) {
	case nil:
		b.WriteByte('n')
	case bool:
		if x {
			b.WriteString("b1")
		} else {
			b.WriteString("b0")
		}
	case int:
		fmt.Fprintf(b, "i%de", x)
	case int32:
		fmt.Fprintf(b, "i%de", x)
	case int64:
		fmt.Fprintf(b, "i%de", x)
	case uint:
		fmt.Fprintf(b, "i%de", x)
	case uint32:
		fmt.Fprintf(b, "i%de", x)
	case uint64:
		fmt.Fprintf(b, "i%de", x)
	case *big.Int:
		fmt.Fprintf(b, "i%se", x.String())
	case float64:
		b.WriteByte('f')
		b.WriteString(FormatFloat(x))
		b.WriteByte('e')
	case float32:
		return encode(b, float64(x), depth)
	case string:
		fmt.Fprintf(b, "s%d:", len(x))
		b.WriteString(x)
	case []byte:
		fmt.Fprintf(b, "s%d:", len(x))
		b.Write(x)
	case []any:
		return encodeSeq(b, 'l', x, depth)
	case Tuple:
		return encodeSeq(b, 't', x, depth)
	case []string:
		b.WriteByte('l')
		for _, s := range x {
			fmt.Fprintf(b, "s%d:%s", len(s), s)
		}
		b.WriteByte('e')
	case *Dict:
		b.WriteByte('d')
		if x != nil {
			for _, kv := range x.Items {
				if err := encode(b, kv.Key, depth+1); err != nil {
					return err
				}
				if err := encode(b, kv.Value, depth+1); err != nil {
					return err
				}
			}
		}
		b.WriteByte('e')
	case Dict:
		return encode(b, &x, depth)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys) // a deterministic order, as py2 encoders did
		b.WriteByte('d')
		for _, k := range keys {
			fmt.Fprintf(b, "s%d:%s", len(k), k)
			if err := encode(b, x[k], depth+1); err != nil {
				return err
			}
		}
		b.WriteByte('e')
	case time.Time:
		u := x.UTC() // DIRAC's datetimes are naive UTC
		fmt.Fprintf(b, "zati%dei%dei%dei%dei%dei%dei%dene", u.Year(), int(u.Month()), u.Day(), u.Hour(), u.Minute(), u.Second(), u.Nanosecond()/1000)
	case Date:
		fmt.Fprintf(b, "zdti%dei%dei%dee", x.Year, x.Month, x.Day)
	case TimeOfDay:
		fmt.Fprintf(b, "ztti%dei%dei%dei%dene", x.Hour, x.Minute, x.Second, x.Microsecond)
	default:
		// Other slices and string-keyed maps by reflection, for callers that
		// hold typed data ([]int, map[string]float64, …).
		rv := reflect.ValueOf(v)
		switch rv.Kind() {
		case reflect.Slice, reflect.Array:
			items := make([]any, rv.Len())
			for i := range items {
				items[i] = rv.Index(i).Interface()
			}
			return encodeSeq(b, 'l', items, depth)
		case reflect.Map:
			if rv.Type().Key().Kind() == reflect.String {
				m := make(map[string]any, rv.Len())
				for _, k := range rv.MapKeys() {
					m[k.String()] = rv.MapIndex(k).Interface()
				}
				return encode(b, m, depth)
			}
		}
		return fmt.Errorf("dips: cannot encode a value of type %s", typeName(v))
	}
	return nil
}

func encodeSeq(b *bytes.Buffer, code byte, items []any, depth int) error {
	b.WriteByte(code)
	for _, it := range items {
		if err := encode(b, it, depth+1); err != nil {
			return err
		}
	}
	b.WriteByte('e')
	return nil
}

// Decode reads one DEncode value from data and returns it with the number of
// bytes it consumed. Like DIRAC's decoder, it ignores trailing bytes, and a
// string whose declared length runs past the data yields the bytes there are
// (consumed then exceeds len(data)). It never panics and allocates no more
// than the data it is given.
func Decode(data []byte) (any, int, error) {
	if len(data) == 0 {
		return nil, 0, decodeErr(0, "empty input")
	}
	d := decoder{data: data}
	v, pos, err := d.value(0, 0)
	return v, pos, err
}

type decoder struct{ data []byte }

func (d *decoder) at(pos int) (byte, error) {
	if pos < 0 || pos >= len(d.data) {
		return 0, decodeErr(pos, "unexpected end of data")
	}
	return d.data[pos], nil
}

func (d *decoder) value(pos, depth int) (any, int, error) {
	if depth > maxDepth {
		return nil, pos, decodeErr(pos, "nesting deeper than %d", maxDepth)
	}
	c, err := d.at(pos)
	if err != nil {
		return nil, pos, err
	}
	switch c {
	case 'i', 'I':
		return d.integer(pos)
	case 'f':
		return d.float(pos)
	case 'b':
		v, err := d.at(pos + 1)
		if err != nil {
			return nil, pos, err
		}
		return v != '0', pos + 2, nil
	case 'n':
		return nil, pos + 1, nil
	case 's', 'u':
		return d.str(pos)
	case 'l', 't':
		items, end, err := d.seq(pos+1, depth)
		if err != nil {
			return nil, end, err
		}
		if c == 't' {
			return Tuple(items), end, nil
		}
		return items, end, nil
	case 'd':
		return d.dict(pos+1, depth)
	case 'z':
		return d.datetime(pos, depth)
	default:
		return nil, pos, decodeErr(pos, "unknown type code %q", c)
	}
}

// indexFrom finds b at or after pos.
func (d *decoder) indexFrom(pos int, b byte) int {
	if pos >= len(d.data) {
		return -1
	}
	i := bytes.IndexByte(d.data[pos:], b)
	if i < 0 {
		return -1
	}
	return pos + i
}

func (d *decoder) integer(pos int) (any, int, error) {
	end := d.indexFrom(pos+1, 'e')
	if end < 0 {
		return nil, pos, decodeErr(pos, "integer without terminating 'e'")
	}
	v, err := parseInt(string(d.data[pos+1 : end]))
	if err != nil {
		return nil, pos, decodeErr(pos, "%v", err)
	}
	return v, end + 1, nil
}

func parseInt(text string) (any, error) {
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		return n, nil
	}
	digits := text
	if len(digits) > 0 && (digits[0] == '-' || digits[0] == '+') {
		digits = digits[1:]
	}
	if digits == "" || len(digits) > 4300 { // CPython's own int-string limit
		return nil, fmt.Errorf("bad integer %q", clip(text))
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return nil, fmt.Errorf("bad integer %q", clip(text))
		}
	}
	n, ok := new(big.Int).SetString(text, 10)
	if !ok {
		return nil, fmt.Errorf("bad integer %q", clip(text))
	}
	return n, nil
}

// float follows DIRAC's rule: the first 'e' ends the number unless a sign
// follows it, in which case it is the exponent marker and the next 'e' ends.
func (d *decoder) float(pos int) (any, int, error) {
	end := d.indexFrom(pos+1, 'e')
	if end < 0 {
		return nil, pos, decodeErr(pos, "float without terminating 'e'")
	}
	if end+1 < len(d.data) && (d.data[end+1] == '+' || d.data[end+1] == '-') {
		end = d.indexFrom(end+1, 'e')
		if end < 0 {
			return nil, pos, decodeErr(pos, "float exponent without terminating 'e'")
		}
	}
	text := string(d.data[pos+1 : end])
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		// ParseFloat reports out-of-range values with ±Inf, as Python does.
		var ne *strconv.NumError
		if !(errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange)) {
			return nil, pos, decodeErr(pos, "bad float %q", clip(text))
		}
	}
	if math.IsNaN(f) {
		f = math.NaN()
	}
	return f, end + 1, nil
}

func (d *decoder) str(pos int) (any, int, error) {
	colon := d.indexFrom(pos+1, ':')
	if colon < 0 {
		return nil, pos, decodeErr(pos, "string without ':'")
	}
	n, err := strconv.Atoi(string(d.data[pos+1 : colon]))
	if err != nil || n < 0 {
		return nil, pos, decodeErr(pos, "bad string length %q", clip(string(d.data[pos+1:colon])))
	}
	start := colon + 1
	if n > len(d.data)-start { // declared length runs past the data
		return string(d.data[start:]), start + n, nil
	}
	return string(d.data[start : start+n]), start + n, nil
}

func (d *decoder) seq(pos, depth int) ([]any, int, error) {
	var items []any
	for {
		c, err := d.at(pos)
		if err != nil {
			return nil, pos, err
		}
		if c == 'e' {
			return items, pos + 1, nil
		}
		v, next, err := d.value(pos, depth+1)
		if err != nil {
			return nil, next, err
		}
		items = append(items, v)
		pos = next
	}
}

func (d *decoder) dict(pos, depth int) (any, int, error) {
	out := &Dict{}
	for {
		c, err := d.at(pos)
		if err != nil {
			return nil, pos, err
		}
		if c == 'e' {
			return out, pos + 1, nil
		}
		k, next, err := d.value(pos, depth+1)
		if err != nil {
			return nil, next, err
		}
		if !hashable(k) {
			return nil, pos, decodeErr(pos, "unhashable dict key of type %s", typeName(k))
		}
		v, next2, err := d.value(next, depth+1)
		if err != nil {
			return nil, next2, err
		}
		out.Set(k, v)
		pos = next2
	}
}

func (d *decoder) datetime(pos, depth int) (any, int, error) {
	kind, err := d.at(pos + 1)
	if err != nil {
		return nil, pos, err
	}
	raw, end, err := d.value(pos+2, depth+1)
	if err != nil {
		return nil, end, err
	}
	var fields []any
	switch x := raw.(type) {
	case []any:
		fields = x
	case Tuple:
		fields = x
	default:
		return nil, pos, decodeErr(pos, "date/time payload is a %s, not a sequence", typeName(raw))
	}
	ints, tz, err := dateFields(fields)
	if err != nil {
		return nil, pos, decodeErr(pos, "%v", err)
	}
	switch kind {
	case 'a':
		if len(ints) < 3 || len(ints) > 7 || tz > 0 && len(ints) != 7 {
			return nil, pos, decodeErr(pos, "datetime needs 3 to 8 fields, got %d", len(fields))
		}
		for len(ints) < 7 {
			ints = append(ints, 0)
		}
		t, err := makeDateTime(ints)
		if err != nil {
			return nil, pos, decodeErr(pos, "%v", err)
		}
		return t, end, nil
	case 'd':
		if len(ints) != 3 || tz > 0 {
			return nil, pos, decodeErr(pos, "date needs 3 fields, got %d", len(fields))
		}
		if _, err := makeDateTime(append(ints, 0, 0, 0, 0)); err != nil {
			return nil, pos, decodeErr(pos, "%v", err)
		}
		return Date{int(ints[0]), int(ints[1]), int(ints[2])}, end, nil
	case 't':
		if len(ints) > 4 || tz > 0 && len(ints) != 4 {
			return nil, pos, decodeErr(pos, "time needs at most 5 fields, got %d", len(fields))
		}
		for len(ints) < 4 {
			ints = append(ints, 0)
		}
		if ints[0] < 0 || ints[0] > 23 || ints[1] < 0 || ints[1] > 59 || ints[2] < 0 || ints[2] > 59 || ints[3] < 0 || ints[3] > 999999 {
			return nil, pos, decodeErr(pos, "time field out of range: %v", ints)
		}
		return TimeOfDay{int(ints[0]), int(ints[1]), int(ints[2]), int(ints[3])}, end, nil
	default:
		return nil, pos, decodeErr(pos, "unknown date/time kind %q", kind)
	}
}

// dateFields splits the integer fields from an optional trailing tzinfo,
// which must be None (DIRAC cannot encode an aware value).
func dateFields(fields []any) ([]int64, int, error) {
	var ints []int64
	tz := 0
	for i, f := range fields {
		if f == nil && i == len(fields)-1 {
			tz = 1
			continue
		}
		n, ok := Int(f)
		if !ok {
			return nil, 0, fmt.Errorf("date/time field %d is a %s, not an integer", i, typeName(f))
		}
		ints = append(ints, n)
	}
	return ints, tz, nil
}

func makeDateTime(f []int64) (time.Time, error) {
	y, mo, d, h, mi, s, us := f[0], f[1], f[2], f[3], f[4], f[5], f[6]
	if y < 1 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59 || us < 0 || us > 999999 {
		return time.Time{}, fmt.Errorf("date/time field out of range: %v", f)
	}
	t := time.Date(int(y), time.Month(mo), int(d), int(h), int(mi), int(s), int(us)*1000, time.UTC)
	if t.Day() != int(d) {
		return time.Time{}, fmt.Errorf("day %d is out of range for month %d", d, mo)
	}
	return t, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
