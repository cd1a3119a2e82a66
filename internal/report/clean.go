package report

import (
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/redact"
)

// The input enters here, once: every string of a Release — found by
// reflection, so a field added later cannot be forgotten — is cut to a
// bound, loses credentials and shows its control characters. The
// templates then only escape.

// Bounds on what one entry may put in the report, so that one huge log
// line or app field cannot make the page unreadable.
const (
	MaxLogLines  = 20   // the last lines of a service's log
	MaxTextRunes = 2000 // any one text: a log line, a field value, an error
)

// Visible is how the report shows a text: control characters are written
// out as escapes rather than acting, in ASCII so that every font has them
// (Unicode's Control Pictures are missing from common fonts). Tab stays;
// newline stays in a multi-line text, else it is \n; CR is \r; the other
// C0 controls and DEL are \xNN (NUL is \x00, ESC \x1b, so an ANSI colour
// code reads \x1b[31m); C1 controls and the bidirectional overrides (which
// would reorder what is shown) are \uNNNN; invalid UTF-8 is U+FFFD (�).
func Visible(s string) string { return visible(s, false) }

func visible(s string, multiline bool) string {
	if isPlain(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteRune('\uFFFD')
		case r == '\t', r == '\n' && multiline:
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r' && multiline && strings.HasPrefix(s[i+1:], "\n"):
			// CRLF is a line end
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20, r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r <= 0x9f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c >= 0x7f {
			return false
		}
	}
	return true
}

// RedactText removes the userinfo of every URL written in a text (an
// error quoting "https://user:token@host/…"), as redact.URL does for one.
func RedactText(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	var b strings.Builder
	last := 0
	eachURL(s, func(start, end int) {
		b.WriteString(s[last:start])
		b.WriteString(redact.URL(s[start:end]))
		last = end
	})
	b.WriteString(s[last:])
	return b.String()
}

// eachURL calls f with the bounds of every "scheme://authority…" in s, up
// to the end of its authority or of the word.
func eachURL(s string, f func(start, end int)) {
	for off := 0; ; {
		i := strings.Index(s[off:], "://")
		if i < 0 {
			return
		}
		i += off
		j := i
		for j > off && isSchemeByte(s[j-1]) {
			j--
		}
		rest := s[i+3:]
		end := strings.IndexAny(rest, "/?# \t\r\n'\"<>`")
		if end < 0 {
			end = len(rest)
		}
		f(j, i+3+end)
		off = i + 3 + end
	}
}

func isSchemeByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'
}

// clean returns a deep copy of r with every string made safe to show.
// Secrets are the credentials of every URL found in r (a hotfix
// repository, an error quoting one): blanked wherever else they appear (a
// git error quoting a token on its own).
func clean(r Release) Release {
	var secrets []string
	collectURLs(reflect.ValueOf(r), func(u string) { secrets = append(secrets, redact.Secrets(u)...) })
	v := reflect.ValueOf(&r).Elem()
	cleanValue(v, cleaner{secrets: secrets})
	for i := range r.Smoke {
		if n := len(r.Smoke[i].Log); n > MaxLogLines {
			r.Smoke[i].Log = r.Smoke[i].Log[n-MaxLogLines:]
		}
	}
	return r
}

type cleaner struct{ secrets []string }

func (c cleaner) text(s, tag string) string {
	s = redact.Scrub(s, c.secrets)
	if tag == "url" {
		s = redact.URL(s)
	}
	s = RedactText(s)
	if n := utf8.RuneCountInString(s); n > MaxTextRunes {
		s = string([]rune(s)[:MaxTextRunes]) + fmt.Sprintf("… (%d more characters)", n-MaxTextRunes)
	}
	return visible(s, tag == "multiline")
}

var ownPkg = reflect.TypeOf(Release{}).PkgPath()

// cleanValue rewrites v in place; slices and pointers are copied first, so
// the caller's Release is never changed.
func cleanValue(v reflect.Value, c cleaner) { cleanTagged(v, c, "") }

func cleanTagged(v reflect.Value, c cleaner, tag string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(c.text(v.String(), tag))
	case reflect.Struct:
		if v.Type().PkgPath() != ownPkg { // time.Time and the like: no text
			return
		}
		for i := 0; i < v.NumField(); i++ {
			cleanTagged(v.Field(i), c, v.Type().Field(i).Tag.Get("report"))
		}
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		cp := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(cp, v)
		v.Set(cp)
		for i := 0; i < v.Len(); i++ {
			cleanTagged(v.Index(i), c, tag)
		}
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		cp := reflect.New(v.Type().Elem())
		cp.Elem().Set(v.Elem())
		v.Set(cp)
		cleanTagged(cp.Elem(), c, tag)
	}
}

// collectURLs calls f with every URL written in any text of v.
func collectURLs(v reflect.Value, f func(string)) {
	switch v.Kind() {
	case reflect.String:
		s := v.String()
		eachURL(s, func(start, end int) { f(s[start:end]) })
	case reflect.Struct:
		if v.Type().PkgPath() != ownPkg {
			return
		}
		for i := 0; i < v.NumField(); i++ {
			collectURLs(v.Field(i), f)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			collectURLs(v.Index(i), f)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			collectURLs(v.Elem(), f)
		}
	}
}
