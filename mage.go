//go:build ignore

// Zero-install entry: `go run mage.go <target>` runs the targets of
// magefile.go without installing mage; `go run mage.go -l` lists them.
//
// Mage decides whether its compiled magefile is current by hashing the
// magefile's whole dependency graph, about 1.7 s on every call — most of a
// no-op release. This entry makes a cheap fingerprint of the tree instead
// (every file's path, size and time, and the Go version): when it equals
// the one of the last successful run, nothing the binary is made from
// changed, and mage is told to trust its own fast hash.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/magefile/mage/mage"
)

func main() {
	fp, stamp := fingerprint()
	// A binary cache and a fast hash are this clone's own, decided here: a
	// `go run mage.go` started by a target of another clone (the
	// benchmark's, in its checkouts) inherits that clone's settings, and
	// would run that clone's binary, built from other sources.
	os.Unsetenv("MAGEFILE_HASHFAST")
	if fp != "" {
		os.Setenv("MAGEFILE_CACHE", filepath.Join(filepath.Dir(stamp), filepath.Base(stamp)+".bin"))
		if b, err := os.ReadFile(stamp); err == nil && string(b) == fp {
			os.Setenv("MAGEFILE_HASHFAST", "1")
		}
	}
	code := mage.Main()
	// The stamp says the cached binary was built from this tree: only a
	// run of a target builds it (-l, -h and the like build nothing).
	if code == 0 && fp != "" && os.Getenv("MAGEFILE_HASHFAST") == "" && runsTarget(os.Args[1:]) {
		os.MkdirAll(filepath.Dir(stamp), 0o755)
		os.WriteFile(stamp, []byte(fp), 0o644)
	}
	os.Exit(code)
}

// runsTarget: the arguments name a target to run (mage builds the binary
// to run it), not a listing, help or another of mage's own commands.
func runsTarget(args []string) bool {
	valued := map[string]bool{"-d": true, "-w": true, "-t": true, "-gocmd": true, "-goos": true, "-goarch": true, "-ldflags": true}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-l" || a == "-h" || a == "-help" || a == "--help" || a == "-version" || a == "-init" || a == "-clean" || a == "-compile" || a == "-autocomplete" || a == "-install":
			return false
		case valued[a]:
			i++
		case !strings.HasPrefix(a, "-"):
			return true
		}
	}
	return false
}

// fingerprint is the tree's fingerprint and where the last one is kept
// ("" when the tree cannot be read: mage then hashes as it always does).
func fingerprint() (string, string) {
	root, err := os.Getwd()
	if err != nil {
		return "", ""
	}
	h := sha256.New()
	fmt.Fprintln(h, runtime.Version(), root)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			switch rel {
			case ".git", "dist", "tools", ".scratch":
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintln(h, rel, info.Size(), info.ModTime().UnixNano(), info.Mode())
		return nil
	})
	if err != nil {
		return "", ""
	}
	cache := os.Getenv("LHCBDIRAC_PIPELINE_CACHE")
	if cache == "" {
		if base, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(base, "lhcbdirac-pipeline")
		}
	}
	if cache == "" {
		return "", ""
	}
	sum := sha256.Sum256([]byte(root))
	return hex.EncodeToString(h.Sum(nil)), filepath.Join(cache, "mage", hex.EncodeToString(sum[:8])+".fingerprint")
}
