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

	"github.com/magefile/mage/mage"
)

func main() {
	fp, stamp := fingerprint()
	if fp != "" && os.Getenv("MAGEFILE_CACHE") == "" {
		// A binary cache of this clone's own: a fast hash covers the
		// magefile alone, and another clone's binary must never be taken.
		os.Setenv("MAGEFILE_CACHE", filepath.Join(filepath.Dir(stamp), filepath.Base(stamp)+".bin"))
	}
	if fp != "" {
		if b, err := os.ReadFile(stamp); err == nil && string(b) == fp {
			os.Setenv("MAGEFILE_HASHFAST", "1")
		}
	}
	code := mage.Main()
	if code == 0 && fp != "" && os.Getenv("MAGEFILE_HASHFAST") == "" {
		os.MkdirAll(filepath.Dir(stamp), 0o755)
		os.WriteFile(stamp, []byte(fp), 0o644)
	}
	os.Exit(code)
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
