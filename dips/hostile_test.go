package dips

import (
	"bytes"
	"errors"
	"math"
	"math/big"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// DIRAC's JEncode writes NaN, Infinity and -Infinity as bare tokens; they
// must decode, and Go must read its own output.
func TestJSONNonFiniteFloats(t *testing.T) {
	v, err := DecodeJSON([]byte(`[NaN, Infinity, -Infinity, {"x": -Infinity}]`))
	if err != nil {
		t.Fatal(err)
	}
	l := v.([]any)
	if !math.IsNaN(l[0].(float64)) || !math.IsInf(l[1].(float64), 1) || !math.IsInf(l[2].(float64), -1) {
		t.Fatalf("%v", l)
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat64} {
		enc, err := EncodeJSON([]any{f})
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeJSON(enc)
		if err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		g := got.([]any)[0].(float64)
		if !(g == f || math.IsNaN(f) && math.IsNaN(g)) {
			t.Errorf("%v went out as %s and came back as %v", f, enc, g)
		}
	}
	for _, bad := range []string{`nan`, `Inf`, `-NaN`, `+Infinity`, `[NaN,]`} {
		if _, err := DecodeJSON([]byte(bad)); err == nil {
			t.Errorf("%s decoded", bad)
		}
	}
}

// Bytes that are not UTF-8 travel as \udcXX (Python's surrogateescape) and
// must come back as the same bytes.
func TestJSONBytesThatAreNotUTF8(t *testing.T) {
	for _, s := range []string{"\xff", "a\x80b\xfe", "é\xc3", "\xed\xa0\x80"} {
		enc, err := EncodeJSON(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeJSON(enc)
		if err != nil || got != s {
			t.Errorf("%q went out as %s and came back as %q (%v)", s, enc, got, err)
		}
	}
	// A surrogate pair is one character; a lone high surrogate stays three
	// bytes (no byte stands for it).
	got, _ := DecodeJSON([]byte(`["\ud83d\ude00", "\ud800x", "\udcff"]`))
	if l := got.([]any); l[0] != "😀" || l[1] != "\xed\xa0\x80x" || l[2] != "\xff" {
		t.Fatalf("%q", l)
	}
}

// Values DIRAC's decoder rejects are refused when encoding, by both codecs.
func TestEncodersRefuseWhatDIRACRejects(t *testing.T) {
	for _, v := range []any{
		Date{2023, 2, 30}, Date{2023, 13, 1}, Date{0, 1, 1}, Date{10000, 1, 1},
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC),
		TimeOfDay{24, 0, 0, 0}, TimeOfDay{1, 60, 0, 0}, TimeOfDay{1, 1, 1, 1000000},
		[]any{1, Date{2023, 2, 29}}, (*big.Int)(nil), make(chan int),
	} {
		if b, err := Encode(v); err == nil {
			t.Errorf("Encode(%#v) = %q", v, b)
		}
		if b, err := EncodeJSON(v); err == nil {
			t.Errorf("EncodeJSON(%#v) = %s", v, b)
		}
	}
	if _, err := Encode(Date{2024, 2, 29}); err != nil {
		t.Errorf("a leap day: %v", err)
	}
}

// Both encoders accept the same Go types, and what each writes decodes to
// the same value.
func TestEncodersAcceptTheSameTypes(t *testing.T) {
	big1 := new(big.Int).Lsh(big.NewInt(1), 70)
	for _, c := range []struct {
		in   any
		want any
	}{
		{int(-3), int64(-3)}, {int8(-3), int64(-3)}, {int16(300), int64(300)}, {int32(7), int64(7)}, {int64(8), int64(8)},
		{uint(9), int64(9)}, {uint8(10), int64(10)}, {uint16(11), int64(11)}, {uint32(12), int64(12)}, {uint64(1 << 63), new(big.Int).SetUint64(1 << 63)},
		{big1, big1}, {float32(0.5), 0.5}, {1.25, 1.25}, {true, true}, {nil, nil}, {"s", "s"},
		{[]string{"a", "b"}, []any{"a", "b"}}, {[]int{1, 2}, []any{int64(1), int64(2)}}, {[2]bool{true, false}, []any{true, false}},
		{map[string]float64{"b": 2, "a": 1}, NewDict("a", 1.0, "b", 2.0)}, {map[string]any{"k": []any{}}, NewDict("k", []any{})},
		{*NewDict("x", 1), NewDict("x", int64(1))}, {Date{2024, 2, 29}, Date{2024, 2, 29}},
		{time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
	} {
		d, err := Encode(c.in)
		if err != nil {
			t.Errorf("Encode(%#v): %v", c.in, err)
			continue
		}
		j, err := EncodeJSON(c.in)
		if err != nil {
			t.Errorf("EncodeJSON(%#v): %v", c.in, err)
			continue
		}
		dv, _, err1 := Decode(d)
		jv, err2 := DecodeJSON(j)
		if err1 != nil || err2 != nil || !equalValues(dv, c.want, 0) || !equalValues(jv, c.want, 0) {
			t.Errorf("%#v: DEncode %q → %#v (%v); JSON %s → %#v (%v); want %#v", c.in, d, dv, err1, j, jv, err2, c.want)
		}
	}
}

// A declared length or count never overflows: every one is checked
// against what remains.
func TestLengthsAreCheckedAgainstWhatRemains(t *testing.T) {
	for _, in := range []string{"s9223372036854775807:", "s9223372036854775807:abc", "ls9223372036854775806:e", "s1000000000:x", "s99999999999999999999:"} {
		v, n, err := Decode([]byte(in))
		if err == nil || n < 0 {
			t.Errorf("Decode(%q) = %#v, %d, %v", in, v, n, err)
		}
	}
	// DIRAC's own leniency stays: a short string at the top level.
	if v, n, err := Decode([]byte("s10:abc")); err != nil || v != "abc" || n != 14 {
		t.Errorf("short string: %#v %d %v", v, n, err)
	}
}

// allocated is what f allocates, in bytes.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// hostileInputs are replies an allowed but hostile server sent: each
// value costs as little input as possible.
func hostileInputs(n int) map[string][]byte {
	seq := func(open, item, close string) []byte {
		return []byte(open + strings.Repeat(item, n) + close)
	}
	keys := func(format func(i int) string) []byte {
		var b bytes.Buffer
		b.WriteByte('d')
		for i := range n {
			b.WriteString(format(i))
			b.WriteByte('n')
		}
		b.WriteByte('e')
		return b.Bytes()
	}
	var j bytes.Buffer
	j.WriteByte('{')
	for i := range n {
		if i > 0 {
			j.WriteByte(',')
		}
		j.WriteString(`"` + strconv.Itoa(i) + `":0`)
	}
	j.WriteByte('}')
	return map[string][]byte{
		"list of None":         seq("l", "n", "e"),
		"list of empty lists":  seq("l", "le", "e"),
		"list of empty string": seq("l", "s0:", "e"),
		"list of ints":         seq("l", "i1e", "e"),
		"dict of int keys":     keys(func(i int) string { return "i" + strconv.Itoa(i) + "e" }),
		"dict of tuple keys":   keys(func(i int) string { return "ti" + strconv.Itoa(i) + "ee" }),
		"JSON array of null":   seq("[", "null,", "null]"),
		"JSON object":          j.Bytes(),
	}
}

// Decoding allocates at most MaxExpansion bytes per input byte, whatever
// the input (a 10 MB list of None cost 462 MB).
func TestDecodingAllocatesInProportionToTheInput(t *testing.T) {
	for name, in := range hostileInputs(200_000) {
		var err error
		a := allocated(func() { _, err = DecodeMixed(in) })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ratio := float64(a) / float64(len(in))
		t.Logf("%-22s %8d bytes in, %10d allocated: %5.1f× ", name, len(in), a, ratio)
		if ratio > MaxExpansion {
			t.Errorf("%s: %.1f bytes allocated per input byte, over %d", name, ratio, MaxExpansion)
		}
	}
}

// Decoding stops at its deadline, whatever the peer sent.
func TestDecodingStopsAtTheDeadline(t *testing.T) {
	for name, in := range hostileInputs(100_000) {
		_, err := DecodeMixedBefore(in, time.Now().Add(-time.Second))
		if !errors.Is(err, ErrDeadline) {
			t.Errorf("%s: %v, want ErrDeadline", name, err)
		}
	}
}

// Dicts with many keys must cost time linear in their size (100k keys
// took 28.6 s): BenchmarkDecodeDict reports ns per key for 10k and 100k.
func BenchmarkDecodeDict(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		for _, name := range []string{"dict of int keys", "dict of tuple keys", "JSON object"} {
			in := hostileInputs(n)[name]
			b.Run(name+"/"+strconv.Itoa(n), func(b *testing.B) {
				for b.Loop() {
					if _, err := DecodeMixed(in); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/key")
			})
		}
	}
}
