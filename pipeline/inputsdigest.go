package pipeline

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/redact"
)

// The inputs digest: one sha256 over everything the release's images are
// made from — the version and environment, the lock, every base by
// digest, the sources' commits, the rendered apps, and the pipeline's own
// code that makes the images (its git tree, with any uncommitted change).
// Builds are reproducible (the same inputs give the same digests, tested),
// so a release whose inputs digest equals the one its images' provenance
// records has nothing to build or test again.

// recipeTree are the paths whose content makes the images: recipes,
// programs, the machinery that builds them, the module's requirements.
var recipeTree = []string{"images", "dips", "internal/build", "marathon/render", "marathon/runspec", "go.mod", "go.sum"}

// pipelineCommit is HEAD of the checkout at root, and whether the
// checkout has changes beside it.
func pipelineCommit(ctx context.Context, root string) (string, bool, error) {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		return "", false, fmt.Errorf("the pipeline's own commit (git rev-parse HEAD in %s), which its provenance names: %w (run from a git checkout)", root, err)
	}
	st, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output()
	if err != nil {
		return "", false, err
	}
	return strings.TrimSpace(string(out)), len(strings.TrimSpace(string(st))) > 0, nil
}

func inputsDigest(ctx context.Context, root string, in *Inputs) (string, error) {
	h := sha256.New()
	c := in.Config
	fmt.Fprintf(h, "version %s\nenvironment %s\nfixture %v\nrepository %s\n", c.Version.Raw, c.Environment, c.Fixture(), c.Repository)
	if in.Lock != nil {
		fmt.Fprintf(h, "lock %s\n", in.Lock.Digest())
	}
	b := in.Bases
	fmt.Fprintf(h, "bases %s %s %s %s %s %s\n", b.LHCbDIRAC, b.Builder, b.MesosSlave, b.MariaDB, b.Etcd, b.Tools)
	for _, src := range in.Sources {
		fmt.Fprintf(h, "source %s %s\n", src.Name, src.Commit)
	}
	if in.installer != "" {
		fmt.Fprintf(h, "installer %s\n", redact.URL(in.installer))
	}
	for _, a := range in.Apps {
		fmt.Fprintf(h, "app %s %x\n", a.ID, sha256.Sum256(a.JSON))
	}
	// The code: the tree of HEAD for the recipe paths, and what differs
	// from it in the checkout (tracked files; new files must be added).
	args := append([]string{"-C", root, "ls-tree", "-r", "HEAD", "--"}, recipeTree...)
	tree, err := exec.CommandContext(ctx, "git", args...).Output()
	if err != nil {
		return "", fmt.Errorf("git ls-tree: %w", err)
	}
	h.Write(tree)
	args = append([]string{"-C", root, "diff", "HEAD", "--"}, recipeTree...)
	diff, err := exec.CommandContext(ctx, "git", args...).Output()
	if err != nil {
		return "", fmt.Errorf("git diff: %w", err)
	}
	h.Write(diff)
	fmt.Fprintf(h, "knobs %q %q\n", in.Build.Rerun, in.Build.UVCache)
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func runID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
