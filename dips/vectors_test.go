package dips

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
)

// vector is one entry of shared/testdata/dips/dencode_vectors.json, produced
// by DIRAC's own encoder.
type vector struct {
	Name             string  `json:"name"`
	PythonRepr       *string `json:"python_repr"`
	DecodedRepr      *string `json:"python_decoded_repr"`
	Hex              string  `json:"hex"`
	Direction        string  `json:"direction"`
	JSON             *string `json:"json"`
	JSONDecodedRepr  *string `json:"json_decoded_repr"`
	JSONError        string  `json:"json_error"`
	FrameHex         string  `json:"frame_hex"`
	JSONFrameHex     string  `json:"json_frame_hex"`
	Consumed         *int    `json:"python_consumed_bytes"`
	MixedDecodedRepr *string `json:"mixedencode_decode_repr"`
	MixedError       string  `json:"mixedencode_decode_error"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	path := filepath.Join(testenv.Testdata(t), "dips", "dencode_vectors.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("DIPS VECTORS MISSING: %v", err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(vs) != 67 {
		t.Fatalf("%s holds %d vectors, want 67", path, len(vs))
	}
	return vs
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDEncodeVectors(t *testing.T) {
	encoded, decoded, failed := 0, 0, 0
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			data := mustHex(t, v.Hex)
			got, n, err := Decode(data)
			if v.PythonRepr == nil { // DIRAC's decoder fails on these
				if err == nil {
					t.Fatalf("decoded %#v, DIRAC's decoder raises", got)
				}
				failed++
				mixed, merr := DecodeMixed(data)
				switch {
				case v.MixedDecodedRepr != nil:
					want := mustParse(t, *v.MixedDecodedRepr)
					if merr != nil || !equalValues(mixed, want, 0) {
						t.Fatalf("mixed decode = %#v, %v; want %s", mixed, merr, *v.MixedDecodedRepr)
					}
				case merr == nil:
					t.Fatalf("mixed decode succeeded (%#v); DIRAC fails with %s", mixed, v.MixedError)
				}
				return
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			decoded++
			// What DIRAC's decoder gives: surrogateescape for bytes, and its
			// mantissa × 10**exp for floats, which can lose an ULP or a
			// subnormal (the vectors record both).
			wantRepr := *v.PythonRepr
			lossy := false
			if v.DecodedRepr != nil {
				wantRepr = *v.DecodedRepr
				lossy = strings.HasPrefix(v.Name, "float_")
			}
			tol := 0.0
			if v.Name == "py2_float_str_precision" {
				tol = 1e-12 // py2 wrote 12 significant digits
			}
			if want := mustParse(t, wantRepr); !equalValues(got, want, tol) {
				t.Fatalf("decoded %#v, want %s", got, wantRepr)
			}
			switch {
			case v.Consumed != nil:
				if n != *v.Consumed {
					t.Errorf("consumed %d bytes, DIRAC consumed %d", n, *v.Consumed)
				}
			case n != len(data):
				t.Errorf("consumed %d of %d bytes", n, len(data))
			}
			if v.Direction == "" && !lossy { // the vector is DIRAC's encoding of the value
				enc, err := Encode(got)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(enc, data) {
					t.Fatalf("encoded\n %q\nDIRAC wrote\n %q", enc, data)
				}
				encoded++
			}
			checkJSON(t, v, got)
			checkFrames(t, v, data)
		})
	}
	t.Logf("vectors: %d decoded, %d encoded byte for byte, %d rejected as DIRAC rejects them", decoded, encoded, failed)
}

func checkJSON(t *testing.T, v vector, value any) {
	t.Helper()
	if v.JSONError != "" {
		if _, err := EncodeJSON(value); err == nil {
			t.Errorf("JSON encoding should fail as DIRAC's does (%s)", v.JSONError)
		}
		return
	}
	if v.JSON == nil {
		return
	}
	enc, err := EncodeJSON(value)
	if err != nil {
		t.Fatalf("JSON encode: %v", err)
	}
	if string(enc) != *v.JSON {
		t.Errorf("JSON\n %s\nDIRAC wrote\n %s", enc, *v.JSON)
	}
	got, err := DecodeJSON([]byte(*v.JSON))
	if err != nil {
		t.Fatalf("JSON decode: %v", err)
	}
	if want := mustParse(t, *v.JSONDecodedRepr); !equalValues(got, want, 0) {
		t.Errorf("JSON decoded %#v, want %s", got, *v.JSONDecodedRepr)
	}
	mixed, err := DecodeMixed([]byte(*v.JSON))
	if err != nil || !equalValues(mixed, got, 0) {
		t.Errorf("mixed decode of the JSON form = %#v, %v", mixed, err)
	}
}

func checkFrames(t *testing.T, v vector, payload []byte) {
	t.Helper()
	keepAlive := strings.HasPrefix(v.Name, "keepalive")
	if v.FrameHex != "" {
		var b bytes.Buffer
		var err error
		if keepAlive {
			err = writeKeepAlive(&b, payload)
		} else {
			err = WriteFrame(&b, payload)
		}
		if err != nil {
			t.Fatal(err)
		}
		if want := mustHex(t, v.FrameHex); !bytes.Equal(b.Bytes(), want) {
			t.Errorf("frame %q, DIRAC wrote %q", b.Bytes(), want)
		}
	}
	if v.JSONFrameHex != "" {
		var b bytes.Buffer
		WriteFrame(&b, []byte(*v.JSON))
		if want := mustHex(t, v.JSONFrameHex); !bytes.Equal(b.Bytes(), want) {
			t.Errorf("JSON frame %q, DIRAC wrote %q", b.Bytes(), want)
		}
	}
}

func mustParse(t *testing.T, repr string) any {
	t.Helper()
	v, err := parsePy(repr)
	if err != nil {
		t.Fatalf("test cannot read python_repr %q: %v", repr, err)
	}
	return v
}
