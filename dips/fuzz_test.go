package dips

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzDecode: the decoder never panics; what it decodes re-encodes into
// something that decodes to an equal value.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"i0e", "f1e+16e", "s5:hello", "li1es1:ane", "ti1eti2ei3eee", "ds1:bi1es1:ai2ee",
		"zati2024ei10ei17ei13ei41ei46ei123456ene", "zdti2024ei10ei17ee", "ztti13ei41ei46ei500ene", "u4:abcd", "I5e", "bx", "n",
		"ds2:OKb1s5:Valuells29:Framework/SystemAdministrators18:MyDIRAC-Productions4:myvoels3:RPCs4:pinges0:s8:9.0.0a31ee",
		"s9223372036854775807:", "ls9223372036854775806:e", "dti1etti1eeeti1eti1eeene", "llllllllle"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		var n int
		var err error
		if len(data) > 4096 { // large enough for the bound to mean something
			if a := allocated(func() { v, n, err = Decode(data) }); a > MaxExpansion*uint64(len(data)) {
				t.Fatalf("%d bytes allocated for %d input bytes", a, len(data))
			}
		} else {
			v, n, err = Decode(data)
		}
		if err != nil {
			return
		}
		if n <= 0 {
			t.Fatalf("consumed %d bytes", n)
		}
		enc, err := Encode(v)
		if err != nil {
			t.Fatalf("decoded %#v but cannot encode it: %v", v, err)
		}
		v2, _, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", enc, err)
		}
		if !sameValue(v, v2) {
			t.Fatalf("round trip changed %#v into %#v", v, v2)
		}
	})
}

// FuzzDecodeJSON: the JSON path never panics either.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"OK": true, "Value": null}`, `{"__dCls": "dt", "obj": "2024-10-17 13:41:46"}`, `[1, 2.5, "x", {"1": [true]}]`, `{"__dCls": "b64", "obj": "AP8="}`,
		`[NaN, Infinity, -Infinity]`, `"\udcff\ud800\ud83d\ude00"`, `{"a": 1, "a": 2}`, `[1e400, -0.0, 123456789012345678901234567890]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := DecodeMixed(data)
		if err != nil {
			return
		}
		// What JSON decodes, JSON encodes back to an equal value.
		if j, err := DecodeJSON(data); err == nil {
			enc, err := EncodeJSON(j)
			if err == nil {
				back, err := DecodeJSON(enc)
				if err != nil || !sameValue(j, back) {
					t.Fatalf("JSON round trip: %#v → %s → %#v (%v)", j, enc, back, err)
				}
			}
		}
		if _, err := EncodeJSON(v); err != nil {
			if _, err2 := Encode(v); err2 != nil {
				t.Fatalf("decoded %#v that neither encoder accepts: %v / %v", v, err, err2)
			}
		}
	})
}

// FuzzReadFrame: the frame reader never panics, never returns more than the
// announced length, and fails rather than hangs on truncated input.
func FuzzReadFrame(f *testing.F) {
	for _, s := range []string{"18:ds2:OKb1s5:Valuene", "dka5:hello", "999999999:", "1234567890:x", "3:ab", ":", "dka"} {
		f.Add([]byte(s), 0)
	}
	f.Fuzz(func(t *testing.T, data []byte, limit int) {
		if limit < 0 {
			limit = -limit
		}
		r := bufio.NewReader(bytes.NewReader(data))
		for i := 0; i < 4; i++ {
			p, _, err := readFrame(r, limit%4096)
			if err != nil {
				return
			}
			if len(p) > len(data) {
				t.Fatalf("frame of %d bytes from %d bytes of input", len(p), len(data))
			}
		}
	})
}

// sameValue is equality where NaN equals NaN (a fuzzer finds "fnane").
func sameValue(a, b any) bool {
	ea, _ := Encode(a)
	eb, _ := Encode(b)
	return bytes.Equal(ea, eb)
}
