// Package httpbody reads the answers of the servers the collector and the
// metrics report talk to (cAdvisor, Docker, InfluxDB) with a bound: an
// answer larger than its limit is refused with an error saying so, never
// decoded whole into memory nor cut silently into "unexpected EOF"; an
// error body quoted in a message is a short single line.
package httpbody

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// TooLargeError is an answer over its limit.
type TooLargeError struct{ Limit int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("answer larger than %s: refused", Size(e.Limit))
}

// Size is n bytes in the unit a reader expects (KiB, MiB).
func Size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Limit returns r bounded to limit bytes: reading past the limit fails with
// a *TooLargeError (where io.LimitReader would end quietly, as if the
// answer were complete).
func Limit(r io.Reader, limit int64) io.Reader {
	return &limited{r: r, left: limit, limit: limit}
}

type limited struct {
	r           io.Reader
	left, limit int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, &TooLargeError{l.limit}
	}
	// Ask for one byte more than is left: getting it proves the answer is
	// over the limit (an answer of exactly limit bytes is accepted).
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	if int64(n) > l.left {
		n = int(l.left)
		l.left = -1
		return n, &TooLargeError{l.limit}
	}
	l.left -= int64(n)
	return n, err
}

// DecodeJSON decodes one JSON value of at most limit bytes from r into v
// (numbers as json.Number when useNumber).
func DecodeJSON(r io.Reader, limit int64, v any, useNumber bool) error {
	dec := json.NewDecoder(Limit(r, limit))
	if useNumber {
		dec.UseNumber()
	}
	err := dec.Decode(v)
	var tl *TooLargeError
	if errors.As(err, &tl) {
		return tl // not wrapped in the decoder's words: the size is the news
	}
	return err
}

// ReadAll reads at most limit bytes of r.
func ReadAll(r io.Reader, limit int64) ([]byte, error) {
	return io.ReadAll(Limit(r, limit))
}

// Snippet is the first n bytes of r (an error body) as one line fit for an
// error message: control characters and invalid UTF-8 become spaces, and a
// cut is marked with "…".
func Snippet(r io.Reader, n int) string {
	b, _ := io.ReadAll(io.LimitReader(r, int64(n)+1))
	return Line(string(b), n)
}

// Line is s shortened to at most n bytes (cut marked with "…"), on one
// line, with control characters and invalid UTF-8 as spaces.
func Line(s string, n int) string {
	cut := len(s) > n
	if cut {
		s = s[:n] // a rune cut in two becomes spaces below
	}
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if cut {
		s += "…"
	}
	return s
}
