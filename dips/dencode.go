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
	v, err := canonical(v)
	if err != nil {
		return err
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
	case int64:
		b.WriteByte('i')
		b.WriteString(strconv.FormatInt(x, 10))
		b.WriteByte('e')
	case *big.Int:
		fmt.Fprintf(b, "i%se", x.String())
	case float64:
		b.WriteByte('f')
		b.WriteString(FormatFloat(x))
		b.WriteByte('e')
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
	case time.Time:
		u := x.UTC() // DIRAC's datetimes are naive UTC
		fmt.Fprintf(b, "zati%dei%dei%dei%dei%dei%dei%dene", u.Year(), int(u.Month()), u.Day(), u.Hour(), u.Minute(), u.Second(), u.Nanosecond()/1000)
	case Date:
		fmt.Fprintf(b, "zdti%dei%dei%dee", x.Year, x.Month, x.Day)
	case TimeOfDay:
		fmt.Fprintf(b, "ztti%dei%dei%dei%dene", x.Hour, x.Minute, x.Second, x.Microsecond)
	}
	return nil
}

// canonical maps every Go type the encoders accept — the same set for
// DEncode and JSON — to the few they write: nil, bool, int64, *big.Int,
// float64, string, []byte, []any, Tuple, *Dict, time.Time, Date,
// TimeOfDay. It refuses what DIRAC's decoder would reject: dates and
// times that do not exist, years outside 1-9999.
func canonical(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, int64, string, []byte, []any, Tuple, *Dict:
		return v, nil
	case int:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint:
		return canonical(uint64(x))
	case uint64:
		if x > math.MaxInt64 {
			return new(big.Int).SetUint64(x), nil
		}
		return int64(x), nil
	case *big.Int:
		if x == nil {
			return nil, errors.New("dips: cannot encode a nil *big.Int")
		}
		return x, nil
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case Dict:
		return &x, nil
	case []string:
		items := make([]any, len(x))
		for i, s := range x {
			items[i] = s
		}
		return items, nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys) // a deterministic order, as py2 encoders did
		d := &Dict{}
		for _, k := range keys {
			d.Set(k, x[k])
		}
		return d, nil
	case time.Time:
		if y := x.UTC().Year(); y < 1 || y > 9999 {
			return nil, fmt.Errorf("dips: cannot encode %s: Python's datetime holds years 1 to 9999", x.UTC().Format(time.RFC3339))
		}
		return x, nil
	case Date:
		if _, err := makeDateTime([]int64{int64(x.Year), int64(x.Month), int64(x.Day), 0, 0, 0, 0}); err != nil {
			return nil, fmt.Errorf("dips: cannot encode the date %04d-%02d-%02d: %v", x.Year, x.Month, x.Day, err)
		}
		return x, nil
	case TimeOfDay:
		if x.Hour < 0 || x.Hour > 23 || x.Minute < 0 || x.Minute > 59 || x.Second < 0 || x.Second > 59 || x.Microsecond < 0 || x.Microsecond > 999999 {
			return nil, fmt.Errorf("dips: cannot encode the time %d:%d:%d.%d: a field is out of range", x.Hour, x.Minute, x.Second, x.Microsecond)
		}
		return x, nil
	}
	// Other slices and string-keyed maps by reflection, for callers that
	// hold typed data ([]int, map[string]float64, …).
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		items := make([]any, rv.Len())
		for i := range items {
			items[i] = rv.Index(i).Interface()
		}
		return items, nil
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String {
			m := make(map[string]any, rv.Len())
			for _, k := range rv.MapKeys() {
				m[k.String()] = rv.MapIndex(k).Interface()
			}
			return canonical(m)
		}
	}
	return nil, fmt.Errorf("dips: cannot encode a value of type %s", typeName(v))
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
// (consumed then exceeds len(data)). It never panics, takes time linear in
// the data, and allocates at most MaxExpansion bytes per byte of it.
func Decode(data []byte) (any, int, error) {
	return DecodeBefore(data, time.Time{})
}

// MaxExpansion bounds what decoding allocates per input byte. The worst
// cases are a list of None — one byte each, a 16-byte interface each in
// the list, and as much again while the list is built — and dicts, whose
// entries carry an index.
const MaxExpansion = 40

// checkEvery is how many values are decoded between two looks at the clock.
const checkEvery = 4096

// ErrDeadline is returned when decoding outlasts its deadline.
var ErrDeadline = errors.New("dips: decoding did not finish before the deadline")

// DecodeBefore is Decode that gives up at deadline (zero: none), so a
// hostile reply cannot hold a caller past its own timeout.
func DecodeBefore(data []byte, deadline time.Time) (any, int, error) {
	if len(data) == 0 {
		return nil, 0, decodeErr(0, "empty input")
	}
	d := decoder{data: data, deadline: deadline}
	v, pos, err := d.value(0, 0)
	return v, pos, err
}

type decoder struct {
	data     []byte
	deadline time.Time
	values   int
	stack    itemStack
}

// itemStack holds the items of the sequences being decoded, nested ones
// above their parents', in fixed-size chunks: a finished sequence is copied
// out into a slice of exactly its length, so nothing is grown by doubling
// and no sequence costs more than twice its final size.
type itemStack struct {
	chunks [][]any
	n      int
}

const chunkLen = 4096

func (s *itemStack) push(v any) {
	if s.n == len(s.chunks)*chunkLen {
		s.chunks = append(s.chunks, make([]any, chunkLen))
	}
	s.chunks[s.n/chunkLen][s.n%chunkLen] = v
	s.n++
}

// popFrom removes the items from position from on, returning them.
func (s *itemStack) popFrom(from int) []any {
	out := make([]any, s.n-from)
	for i := range out {
		p := from + i
		out[i] = s.chunks[p/chunkLen][p%chunkLen]
		s.chunks[p/chunkLen][p%chunkLen] = nil
	}
	s.n = from
	return out
}

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
	d.values++
	if d.values%checkEvery == 0 && !d.deadline.IsZero() && time.Now().After(d.deadline) {
		return nil, pos, fmt.Errorf("%w (after %d values, at byte %d of %d)", ErrDeadline, d.values, pos, len(d.data))
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

// float follows DIRAC's decodeFloat: the first 'e' ends the number unless
// a sign follows it, in which case it is the exponent marker and the next
// 'e' ends; and with an exponent the value is mantissa × 10**exponent,
// computed as Python computes it (a subnormal such as 5e-324 becomes 0.0
// there, and an exponent above 308 is an OverflowError), not parsed whole.
func (d *decoder) float(pos int) (any, int, error) {
	end := d.indexFrom(pos+1, 'e')
	if end < 0 {
		return nil, pos, decodeErr(pos, "float without terminating 'e'")
	}
	if end+1 < len(d.data) && (d.data[end+1] == '+' || d.data[end+1] == '-') {
		mark := end
		end = d.indexFrom(end+1, 'e')
		if end < 0 {
			return nil, pos, decodeErr(pos, "float exponent without terminating 'e'")
		}
		mant, err := pyFloat(string(d.data[pos+1 : mark]))
		if err != nil {
			return nil, pos, decodeErr(pos, "%v", err)
		}
		exp, err := strconv.Atoi(string(d.data[mark+1 : end]))
		if err != nil {
			return nil, pos, decodeErr(pos, "bad float exponent %q", clip(string(d.data[mark+1:end])))
		}
		f, err := pyTimesPow10(mant, exp)
		if err != nil {
			return nil, pos, decodeErr(pos, "%v", err)
		}
		return f, end + 1, nil
	}
	f, err := pyFloat(string(d.data[pos+1 : end]))
	if err != nil {
		return nil, pos, decodeErr(pos, "%v", err)
	}
	return f, end + 1, nil
}

// pyFloat is Python's float(text): correctly rounded, out-of-range
// values infinite.
func pyFloat(text string) (float64, error) {
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		var ne *strconv.NumError
		if !(errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange)) {
			return 0, fmt.Errorf("bad float %q", clip(text))
		}
	}
	if math.IsNaN(f) {
		f = math.NaN()
	}
	return f, nil
}

// pyTimesPow10 is Python's m * 10 ** e: for e >= 0 an exact integer,
// converted to the nearest float (OverflowError past the largest float);
// for e < 0 the float power, correctly rounded (0.0 below the subnormals).
func pyTimesPow10(m float64, e int) (float64, error) {
	if e > 308 {
		return 0, fmt.Errorf("float exponent %d: int too large to convert to float (DIRAC's OverflowError)", e)
	}
	p, _ := strconv.ParseFloat("1e"+strconv.Itoa(e), 64) // the nearest float to 10**e
	return m * p, nil
}

func (d *decoder) str(pos int) (any, int, error) {
	colon := d.indexFrom(pos+1, ':')
	if colon < 0 {
		return nil, pos, decodeErr(pos, "string without ':'")
	}
	digits := d.data[pos+1 : colon]
	n, err := strconv.Atoi(string(digits))
	if err != nil || n < 0 {
		return nil, pos, decodeErr(pos, "bad string length %q", clip(string(digits)))
	}
	start := colon + 1
	if n > len(d.data)-start {
		// DIRAC returns the bytes there are and moves past the declared
		// end; a length no DIPS frame could hold is refused instead (the
		// count would not fit, and no data can follow it).
		if n > MaxFrameLen {
			return nil, pos, decodeErr(pos, "string length %d exceeds any frame (%d bytes remain)", n, len(d.data)-start)
		}
		return string(d.data[start:]), start + n, nil
	}
	return string(d.data[start : start+n]), start + n, nil
}

func (d *decoder) seq(pos, depth int) ([]any, int, error) {
	from := d.stack.n
	for {
		c, err := d.at(pos)
		if err != nil {
			d.stack.popFrom(from)
			return nil, pos, err
		}
		if c == 'e' {
			if d.stack.n == from {
				return nil, pos + 1, nil
			}
			return d.stack.popFrom(from), pos + 1, nil
		}
		v, next, err := d.value(pos, depth+1)
		if err != nil {
			d.stack.popFrom(from)
			return nil, next, err
		}
		d.stack.push(v)
		pos = next
	}
}

// dict collects the keys and values on the item stack, then builds the
// Dict at its final size (no growing, an index sized once).
func (d *decoder) dict(pos, depth int) (any, int, error) {
	from := d.stack.n
	for {
		c, err := d.at(pos)
		if err != nil {
			d.stack.popFrom(from)
			return nil, pos, err
		}
		if c == 'e' {
			return dictOf(d.stack.popFrom(from)), pos + 1, nil
		}
		k, next, err := d.value(pos, depth+1)
		if err != nil {
			d.stack.popFrom(from)
			return nil, next, err
		}
		if !hashable(k) {
			d.stack.popFrom(from)
			return nil, pos, decodeErr(pos, "unhashable dict key of type %s", typeName(k))
		}
		v, next2, err := d.value(next, depth+1)
		if err != nil {
			d.stack.popFrom(from)
			return nil, next2, err
		}
		d.stack.push(k)
		d.stack.push(v)
		pos = next2
	}
}

// dictOf makes a Dict of alternating keys and values; a repeated key keeps
// its first position and its last value, as in Python.
func dictOf(kv []any) *Dict {
	out := &Dict{Items: make([]KV, 0, len(kv)/2)}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
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
