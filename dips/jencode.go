package dips

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"sort"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

const jsonDateTime = "2006-01-02 15:04:05"

// DecodeJSON reads DIRAC's JSON form (JEncode): objects keep their key order,
// integers stay integers, and {"__dCls": "dt"|"date"|"b64"} objects become
// time.Time, Date and string. Python's bare NaN/Infinity tokens are not JSON
// and are refused.
func DecodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := jsonValue(dec, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: JSON: %v", ErrDecode, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: JSON: trailing data after the value", ErrDecode)
	}
	return v, nil
}

func jsonValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nesting deeper than %d", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			items := []any{}
			for dec.More() {
				v, err := jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				items = append(items, v)
			}
			_, err := dec.Token()
			return items, err
		case '{':
			d := &Dict{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				d.Set(k, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return jsonSpecial(d)
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		s := t.String()
		if !strings.ContainsAny(s, ".eE") {
			return parseInt(s)
		}
		f, err := t.Float64()
		if err != nil && !math.IsInf(f, 0) {
			return nil, err
		}
		return f, nil
	default: // string, bool, nil
		return t, nil
	}
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
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case int, int32, int64, uint, uint32, uint64:
		fmt.Fprintf(b, "%d", x)
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
	case float32:
		return jenc(b, float64(x), depth)
	case string:
		jstr(b, x)
	case []byte:
		return jenc(b, NewDict("__dCls", "b64", "obj", base64.StdEncoding.EncodeToString(x)), depth)
	case []string:
		items := make([]any, len(x))
		for i, s := range x {
			items[i] = s
		}
		return jenc(b, items, depth)
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
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := &Dict{}
		for _, k := range keys {
			d.Items = append(d.Items, KV{k, x[k]})
		}
		return jenc(b, d, depth)
	case time.Time:
		return jenc(b, NewDict("__dCls", "dt", "obj", x.UTC().Format(jsonDateTime)), depth)
	case Date:
		return jenc(b, NewDict("__dCls", "date", "obj", fmt.Sprintf("%04d-%02d-%02d", x.Year, x.Month, x.Day)), depth)
	case TimeOfDay:
		return errors.New("dips: JSON cannot encode a time of day (DIRAC's JEncode cannot either)")
	default:
		return fmt.Errorf("dips: cannot encode a value of type %s as JSON", typeName(v))
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
	case int64, int:
		return fmt.Sprintf("%d", x), nil
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
func DecodeMixed(data []byte) (any, error) {
	v, _, derr := Decode(data)
	if derr == nil {
		return v, nil
	}
	v, jerr := DecodeJSON(data)
	if jerr == nil {
		return v, nil
	}
	return nil, fmt.Errorf("%w (DEncode: %v; JSON: %v)", ErrDecode, strings.TrimPrefix(derr.Error(), ErrDecode.Error()+": "), strings.TrimPrefix(jerr.Error(), ErrDecode.Error()+": "))
}
