package benchpeer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
)

// TestContextInstallsTheWholeLockWithHashes: requirements.txt holds every
// runtime distribution of the lock once, each with its hashes, LHCbDIRAC
// last; build.txt the build section; the Dockerfile pip-installs both
// with --require-hashes from the two bases it is given.
func TestContextInstallsTheWholeLockWithHashes(t *testing.T) {
	lock, err := lhcbdirac.ReadLock(filepath.Join("..", "..", "images", "lhcbdirac", "testdata", "resolved.lock"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Context(dir, lock); err != nil {
		t.Fatal(err)
	}
	read := func(n string) string {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	req := read("requirements.txt")
	var names []string
	for _, line := range strings.Split(req, "\n") {
		if line != "" && !strings.HasPrefix(line, " ") {
			names = append(names, strings.SplitN(line, "==", 2)[0])
		}
		if strings.HasPrefix(line, " ") && !strings.Contains(line, "--hash=sha256:") {
			t.Errorf("a continuation line without a hash: %q", line)
		}
	}
	seen := map[string]int{}
	for _, n := range names {
		seen[n]++
	}
	for _, p := range lock.Runtime {
		if seen[p.Name] != 1 {
			t.Errorf("%s appears %d times in requirements.txt", p.Name, seen[p.Name])
		}
	}
	if len(names) == 0 || names[len(names)-1] != "lhcbdirac" {
		t.Errorf("LHCbDIRAC is not installed last: %q", names)
	}
	if got, want := read("build.txt"), string(lock.BuildRequirements()); got != want {
		t.Errorf("build.txt differs from the lock's build section")
	}
	df := read("Dockerfile")
	for _, want := range []string{"FROM ${BUILDER_BASE} AS build", "FROM ${BASE}\n", "--no-compile --require-hashes --no-deps -r /tmp/build.txt", "--no-compile --require-hashes --no-deps --no-build-isolation -r /tmp/requirements.txt", "COPY --from=build /opt/dirac /opt/dirac", "ENTRYPOINT [\"/opt/dirac/dockerEntrypoint.sh\"]"} {
		if !strings.Contains(df, want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "dockerEntrypoint.sh")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("the entrypoint must be executable: %v %v", st.Mode(), err)
	}
	if err := Context(t.TempDir(), nil); err == nil {
		t.Error("a missing lock must be refused")
	}
}
