//go:build integration

package magecli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLockCheckOffline runs go run mage.go lock:check as a release manager
// or CI would, in a network namespace of its own (no network at all) with
// no Docker: a valid lock gives exit 0 and one line; a hostile one a
// non-zero exit naming the file, the line and what is wrong.
func TestLockCheckOffline(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("unshare (util-linux) runs the check without a network: %v", err)
	}
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	run := func(file string) (string, int) {
		cmd := exec.Command("unshare", "--net", "go", "run", "mage.go", "lock:check", file)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=readonly", "DOCKER_HOST=unix:///nonexistent/docker.sock", "_EXPERIMENTAL_DAGGER_RUNNER_HOST=unix:///nonexistent/dagger.sock")
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
		}
		return strings.TrimSpace(string(out)), code
	}
	good := filepath.Join(root, "images", "lhcbdirac", "testdata", "annotated.lock")
	out, code := run(good)
	if code != 0 || strings.Count(out, "\n") != 0 || !strings.HasPrefix(out, good+": ok: LHCbDIRAC 12.0.21, DIRAC 9.1.22, 13 distributions (3 built from source), 6 build tools, sha256:") {
		t.Fatalf("a valid lock: exit %d: %s", code, out)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	evil := filepath.Join(t.TempDir(), "evil.lock")
	lines := strings.Split(string(b), "\n")
	lines = append(lines[:12:12], append([]string{"    evil @ file:///tmp/evil-1.0-py3-none-any.whl"}, lines[12:]...)...)
	if err := os.WriteFile(evil, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = run(evil)
	if code == 0 || !strings.Contains(out, evil+":13: an indented line that continues nothing") {
		t.Fatalf("a hostile lock: exit %d: %s", code, out)
	}
}
