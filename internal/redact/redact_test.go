package redact

import "testing"

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:TOKEN@gitlab.example.org/lhcb/DIRAC.git": "https://gitlab.example.org/lhcb/DIRAC.git",
		"https://TOKEN@host/x":                                 "https://host/x",
		"http://u:p%40ss@host:8080/simple/":                    "http://host:8080/simple/",
		"ssh://git@host/repo.git":                              "ssh://host/repo.git",
		"https://host/x":                                       "https://host/x",
		"/srv/git/DIRAC.git":                                   "/srv/git/DIRAC.git",
		"git@host:lhcb/DIRAC.git":                              "git@host:lhcb/DIRAC.git",
		"https://u:TOK EN@host/x":                              "https://host/x", // does not parse: still cut
		"http://a@b:%zz@host/p":                                "http://host/p",
	} {
		if got := URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSplitAndScrub(t *testing.T) {
	clean, user, pass := Split("https://robot:s3cr3t-T0KEN@host/DIRAC.git")
	if clean != "https://host/DIRAC.git" || user != "robot" || pass != "s3cr3t-T0KEN" {
		t.Fatalf("Split: %q %q %q", clean, user, pass)
	}
	msg := "fatal: unable to access 'https://robot:s3cr3t-T0KEN@host/': 403"
	if got := Scrub(msg, Secrets("https://robot:s3cr3t-T0KEN@host/DIRAC.git")); got != "fatal: unable to access 'https://***:***@host/': 403" {
		t.Fatalf("Scrub: %q", got)
	}
}
