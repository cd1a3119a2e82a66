package magecli_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTheZeroInstallEntryNeverRunsABinaryBuiltFromOtherSources: mage.go
// lets mage trust its cached binary only when the tree is the one that
// binary was built from. A listing (-l) builds nothing, so it must not
// vouch for the binary; and the settings a `go run mage.go` inherits from
// another clone's (a target running a release in a checkout) must not
// make it run that clone's binary. The magefile here prints a file it
// embeds, as the pipeline embeds its services file.
func TestTheZeroInstallEntryNeverRunsABinaryBuiltFromOtherSources(t *testing.T) {
	repo, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	entry, err := os.ReadFile(filepath.Join(repo, "mage.go"))
	if err != nil {
		t.Fatal(err)
	}
	var mageVersion, sums string
	f, err := os.Open(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 3 && fields[0] == "github.com/magefile/mage" {
			sums += sc.Text() + "\n"
			mageVersion = strings.TrimSuffix(fields[1], "/go.mod")
		}
	}
	f.Close()
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/zeroinstall\n\ngo 1.26\n\nrequire github.com/magefile/mage "+mageVersion+"\n")
	write("go.sum", sums)
	write("mage.go", string(entry))
	write("magefile.go", "//go:build mage\n\npackage main\n\nimport (\n\t_ \"embed\"\n\t\"fmt\"\n)\n\n//go:embed data.txt\nvar data string\n\n// Show prints the embedded file.\nfunc Show() { fmt.Print(data) }\n")
	cache := t.TempDir()
	run := func(extra []string, args ...string) string {
		t.Helper()
		cmd := exec.Command("go", append([]string{"run", "mage.go"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LHCBDIRAC_PIPELINE_CACHE="+cache, "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
		cmd.Env = append(cmd.Env, extra...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go run mage.go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	data := func(text string, at time.Time) {
		write("data.txt", text)
		if err := os.Chtimes(filepath.Join(dir, "data.txt"), at, at); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	data("one", now.Add(-time.Hour))
	run(nil, "-l")
	if got := run(nil, "show"); got != "one" {
		t.Fatalf("show printed %q, want one", got)
	}
	if got := run(nil, "show"); got != "one" {
		t.Fatalf("show again printed %q, want one", got)
	}
	// Changed (the same size, another time), listed, then run.
	data("two", now.Add(-time.Minute))
	run(nil, "-l")
	if got := run(nil, "show"); got != "two" {
		t.Fatalf("after a change and a listing, show printed %q (the binary of the old tree), want two", got)
	}
	// Another clone's settings inherited: its binary cache, its fast hash.
	other := t.TempDir()
	data("3rd", now)
	if got := run([]string{"MAGEFILE_HASHFAST=1", "MAGEFILE_CACHE=" + other}, "show"); got != "3rd" {
		t.Fatalf("with another clone's settings, show printed %q, want 3rd", got)
	}
}
