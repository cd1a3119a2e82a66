// Package redact keeps credentials that arrive inside URLs (a hotfix
// repository https://user:token@host/…, an index https://user:pass@mirror/…)
// out of everything the pipeline shows or stores: progress, errors,
// summaries, labels, dist/. The credentials themselves travel separately,
// through the environment or Dagger secrets, never on a command line.
package redact

import (
	"net/url"
	"strings"
)

// Split separates a URL's userinfo from the rest. For anything that is not
// a URL with userinfo it returns s unchanged and no credentials.
func Split(s string) (clean, user, password string) {
	u, err := url.Parse(s)
	if err != nil || u.User == nil || u.Scheme == "" || u.Host == "" {
		return s, "", ""
	}
	user = u.User.Username()
	password, _ = u.User.Password()
	u.User = nil
	return u.String(), user, password
}

// URL is s without the userinfo of a URL: what may be shown and stored.
// Text that does not parse as a URL but still holds "scheme://…@" has
// everything up to the last '@' of its authority removed, so a malformed
// value never shows its credentials either.
func URL(s string) string {
	clean, user, password := Split(s)
	if user != "" || password != "" {
		return clean
	}
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
			return s[:i+3] + rest[at+1:]
		}
	}
	return s
}

// Secrets returns the credentials held in values (userinfo of URLs), for
// scrubbing text that may quote them (an error message from a tool).
func Secrets(values ...string) []string {
	var out []string
	for _, v := range values {
		if _, user, password := Split(v); password != "" || user != "" {
			for _, s := range []string{user, password, url.QueryEscape(password), url.PathEscape(user)} {
				if len(s) >= 4 { // shorter ones would blank out ordinary words
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// Scrub replaces every secret in text by "***".
func Scrub(text string, secrets []string) string {
	for _, s := range secrets {
		text = strings.ReplaceAll(text, s, "***")
	}
	return text
}
