package baseimage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
)

// copyTree copies the shared debootstrap tree into dst (which exists and is
// empty): owners, modes, device nodes and hard links kept.
func copyTree(ctx context.Context, src, dst string) error {
	out, err := exec.CommandContext(ctx, "cp", "-a", "--reflink=auto", src+"/.", dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("copying the debootstrap tree %s: %v: %s", src, err, out)
	}
	return nil
}

// aptInstall installs pkgs into tree, a copy of the debootstrap tree, from
// the archive lists debootstrap left in it: the same lists give the same
// versions. The packages are fetched on the host, where the archive's name
// resolves and its proxy and certificates are configured, into a .deb cache
// shared by every tree (a package several bases need is fetched once) and
// checked by apt against the lists' hashes; the install itself runs inside
// the tree (chroot, a PID namespace of its own and its own /proc, services
// kept from starting), without network.
func aptInstall(ctx context.Context, tree string, pkgs []string, logPath string) (err error) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		return errors.New("apt-get not found on PATH: the bases' packages are fetched with the host's apt, so they are made on a Debian or Ubuntu host")
	}
	for _, tool := range []string{"unshare", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found on PATH (util-linux, coreutils)", tool)
		}
	}
	debs, err := cachedir.Sub("debs")
	if err != nil {
		return err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	fail := func(what string, err error) error {
		return fmt.Errorf("%s of %s failed (%v); last lines of %s:\n%s\nCheck that the Debian mirror is reachable (or set %s) and that the package names exist",
			what, strings.Join(pkgs, " "), err, logPath, tail(logPath, 15), MirrorEnv)
	}
	install := append([]string{"-y", "--no-install-recommends", "install"}, pkgs...)

	// Which .debs the tree needs, asked with an empty archive directory
	// so that every one is named; then fetched into the shared cache.
	empty, err := os.MkdirTemp(tree, ".debs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(empty)
	uris, err := hostApt(ctx, tree, empty, logf, append([]string{"--print-uris", "-qq"}, install...)...)
	if err != nil {
		return fail("resolving", err)
	}
	names, err := debNames(uris)
	if err != nil {
		return fail("resolving", err)
	}
	// apt refuses, rather than waits for, an archive directory another
	// apt holds: trees made at once take turns here.
	unlock, err := cachedir.Lock(filepath.Join(debs, ".fetch.lock"))
	if err != nil {
		return err
	}
	_, err = hostApt(ctx, tree, debs, logf, append([]string{"--download-only", "-q"}, install...)...)
	unlock()
	if err != nil {
		return fail("fetching", err)
	}
	archives := filepath.Join(tree, "var/cache/apt/archives")
	for _, n := range names {
		if err := linkOrCopy(filepath.Join(debs, n), filepath.Join(archives, n)); err != nil {
			return fmt.Errorf("placing %s in the tree: %w", n, err)
		}
	}

	// No service starts inside the tree (debootstrap does the same).
	policy := filepath.Join(tree, "usr/sbin/policy-rc.d")
	if err := os.WriteFile(policy, []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
		return err
	}
	defer func() {
		if rerr := os.Remove(policy); err == nil {
			err = rerr
		}
	}()
	cmd := exec.CommandContext(ctx, "unshare", "--fork", "--pid", "--mount-proc="+filepath.Join(tree, "proc"),
		"chroot", tree, "apt-get", "--no-download", "-q", "-o", "Dpkg::Options::=--force-confold",
		// No fsync per unpacked file: the tree is made in a temporary
		// directory and renamed into place whole once apt succeeded (a
		// crash leaves nothing that looks made), so dpkg's care for a
		// live system's files buys nothing here; the files are the same.
		"-o", "Dpkg::Options::=--force-unsafe-io")
	cmd.Args = append(cmd.Args, install...)
	cmd.Env = []string{"PATH=" + DefaultPath, "HOME=/root", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive", "DEBCONF_NONINTERACTIVE_SEEN=true"}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		return fail("apt-get install in the tree", err)
	}
	return nil
}

// hostApt runs the host's apt-get on tree's lists and dpkg status, with
// archives as its .deb directory, and returns its output.
func hostApt(ctx context.Context, tree, archives string, log io.Writer, args ...string) (string, error) {
	opts := []string{
		"-o", "Dir=" + tree,
		"-o", "Dir::State::status=" + filepath.Join(tree, "var/lib/dpkg/status"),
		"-o", "Dir::Cache::archives=" + archives,
	}
	if err := os.MkdirAll(filepath.Join(archives, "partial"), 0o755); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "apt-get", append(opts, args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, log), log
	err := cmd.Run()
	return out.String(), err
}

// debNames reads apt-get --print-uris: 'URI' FILE SIZE HASH per line.
func debNames(uris string) ([]string, error) {
	var names []string
	sc := bufio.NewScanner(strings.NewReader(uris))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || !strings.HasPrefix(f[0], "'") {
			continue
		}
		n := f[1]
		if !strings.HasSuffix(n, ".deb") || strings.ContainsAny(n, "/\x00") || strings.HasPrefix(n, ".") {
			return nil, fmt.Errorf("apt named an unexpected file %q", n)
		}
		names = append(names, n)
	}
	return names, sc.Err()
}

// linkOrCopy hard-links src at dst, copying when they are on different
// file systems.
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil || errors.Is(err, os.ErrExist) {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}
