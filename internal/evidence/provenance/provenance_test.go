package provenance_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/provenance"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func input() provenance.Input {
	return provenance.Input{
		Commit: strings.Repeat("a", 40), BuilderDeps: map[string]string{"dagger": "v0.19.7"},
		Image: "lhcbdirac", Version: "v12.0.21", Tag: "v12.0.21-hotfix.dddddddddddd",
		Hotfixes:     []provenance.Hotfix{{Name: "DIRAC", Repo: "https://ci-bot:glpat-s3cr3t@git.example.org/dirac.git", Branch: "rel-v9r0", Commit: strings.Repeat("d", 40)}},
		Recipe:       map[string]string{"index": "https://user:p4ss@mirror.example.org/simple"},
		Dependencies: []provenance.Dependency{{Name: "lock", Digest: "sha256:" + strings.Repeat("e", 64)}, {Name: "source:DIRAC", URI: "https://ci-bot:glpat-s3cr3t@git.example.org/dirac.git", Digest: "gitCommit:" + strings.Repeat("d", 40)}},
		StartedOn:    t0, FinishedOn: t0.Add(time.Hour),
	}
}

func TestPredicateRoundTripsWithoutCredentials(t *testing.T) {
	b, err := provenance.Predicate(input())
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"glpat-s3cr3t", "p4ss", "ci-bot"} {
		if strings.Contains(string(b), secret) {
			t.Fatalf("the provenance holds a credential (%s):\n%s", secret, b)
		}
	}
	p, err := provenance.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.Commit() != strings.Repeat("a", 40) || p.BuildType != provenance.BuildType || p.Builder["dagger"] != "v0.19.7" || p.Version() != "v12.0.21" || p.Fixture() {
		t.Fatalf("parsed %+v", p)
	}
	if !p.StartedOn.Equal(t0) || !p.FinishedOn.Equal(t0.Add(time.Hour)) {
		t.Fatalf("times %s %s", p.StartedOn, p.FinishedOn)
	}
	if len(p.Dependencies) != 2 || p.Dependencies[0].Name != "lock" || p.Dependencies[1].URI != "https://git.example.org/dirac.git" {
		t.Fatalf("dependencies %+v", p.Dependencies)
	}
	hf := p.External["hotfixes"].([]any)[0].(map[string]any)
	if hf["repository"] != "https://git.example.org/dirac.git" || hf["commit"] != strings.Repeat("d", 40) {
		t.Fatalf("hotfix %+v", hf)
	}
}

func TestPredicateRefusesWhatIsNotABuild(t *testing.T) {
	for name, edit := range map[string]func(*provenance.Input){
		"short commit":      func(in *provenance.Input) { in.Commit = "abc" },
		"no version":        func(in *provenance.Input) { in.Version = "" },
		"end before start":  func(in *provenance.Input) { in.FinishedOn = in.StartedOn.Add(-time.Second) },
		"dependency digest": func(in *provenance.Input) { in.Dependencies[0].Digest = "latest" },
		"hotfix commit":     func(in *provenance.Input) { in.Hotfixes[0].Commit = "main" },
	} {
		in := input()
		edit(&in)
		if _, err := provenance.Predicate(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
