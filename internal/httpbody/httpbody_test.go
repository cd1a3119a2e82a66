package httpbody

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// An answer over the limit is an error naming the limit; one of exactly
// the limit is whole.
func TestLimit(t *testing.T) {
	b, err := ReadAll(strings.NewReader(strings.Repeat("x", 1024)), 1024)
	if err != nil || len(b) != 1024 {
		t.Fatalf("exactly the limit: %d bytes, %v", len(b), err)
	}
	_, err = ReadAll(strings.NewReader(strings.Repeat("x", 1025)), 1024)
	var tl *TooLargeError
	if !errors.As(err, &tl) || err.Error() != "answer larger than 1 KiB: refused" {
		t.Fatalf("over the limit: %v", err)
	}
	// Decoding stops at the limit, with the size as the error.
	var v []string
	err = DecodeJSON(io.MultiReader(strings.NewReader(`["`), strings.NewReader(strings.Repeat("a", 3<<20)), strings.NewReader(`"]`)), 1<<20, &v, false)
	if err == nil || err.Error() != "answer larger than 1 MiB: refused" {
		t.Fatalf("decode: %v", err)
	}
	if err := DecodeJSON(strings.NewReader(`{"a": 1}`), 1<<20, &map[string]any{}, true); err != nil {
		t.Fatal(err)
	}
}

func TestSnippet(t *testing.T) {
	if got := Snippet(strings.NewReader("line one\nline\ttwo\x00é"+strings.Repeat("z", 100)), 24); got != "line one line two ézzzz…" {
		t.Errorf("%q", got)
	}
	if got := Line("ab\xc3", 3); got != "ab" {
		t.Errorf("%q", got)
	}
	if got := Line("abé", 3); got != "ab…" {
		t.Errorf("cut inside a rune: %q", got)
	}
}
