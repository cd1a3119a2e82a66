package redact

import "testing"

func TestAuthValues(t *testing.T) {
	for in, want := range map[string]string{
		"401: Authorization: Basic YWRtaW46czNjcmV0":                   "401: Authorization: Basic ***",
		`{"headers":{"Authorization":["Basic YWRtaW46czNjcmV0Cg=="]}}`: `{"headers":{"Authorization":["Basic ***"]}}`,
		"authorization: bearer eyJhbGciOi.J9.x-y_z":                    "authorization: bearer ***",
		"token=abcd1234":      "token=***",
		"basic auth required": "basic auth required",
		"a basic fact":        "a basic fact",
	} {
		if got := AuthValues(in); got != want {
			t.Errorf("AuthValues(%q) = %q, want %q", in, got, want)
		}
	}
}
