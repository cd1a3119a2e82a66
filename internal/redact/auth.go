package redact

import (
	"regexp"
	"strings"
)

// authValue is an HTTP authorization value as a server or a proxy may echo
// it in an error body: a scheme and its credentials.
var authValue = regexp.MustCompile(`(?i)\b(basic|bearer|token)(\s+|=|:\s*)([A-Za-z0-9+/._~-]{4,}=*)`)

// AuthValues replaces the credentials of every "Basic …", "Bearer …" or
// "token …" in text (an echoed Authorization header) by "***". A plain
// lower-case word after the scheme ("basic auth required") is prose, not a
// credential, and stays.
func AuthValues(text string) string {
	return authValue.ReplaceAllStringFunc(text, func(m string) string {
		sub := authValue.FindStringSubmatch(m)
		if strings.TrimSpace(sub[2]) == "" && len(sub[3]) < 16 && strings.Trim(sub[3], "abcdefghijklmnopqrstuvwxyz") == "" {
			return m
		}
		return sub[1] + sub[2] + "***"
	})
}
