package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/testtools"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/lint"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
)

// The developers' targets: lint and test.

// RunLint is `mage lint`: gofmt and go vet (the integration tests and the
// magefile, behind their build tags, included), and the tree's shape.
func RunLint(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "gofmt", "-l", ".").CombinedOutput()
	if err != nil {
		return fmt.Errorf("gofmt: %v: %s", err, out)
	}
	if files := strings.TrimSpace(string(out)); files != "" {
		return fmt.Errorf("gofmt would change these files (run gofmt -w):\n%s", files)
	}
	for _, args := range [][]string{{"vet", "-tags", "integration", "./..."}, {"vet", "-tags", "mage", "."}} {
		vet := exec.CommandContext(ctx, "go", args...)
		vet.Stdout, vet.Stderr = os.Stdout, os.Stderr
		if err := vet.Run(); err != nil {
			return fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
		}
	}
	// The tree's shape: imports one way, the environment read at one place.
	pkgs, err := lint.Load(ctx, ".")
	if err != nil {
		return err
	}
	bad := lint.Layers(pkgs)
	env, err := lint.EnvReaders(pkgs)
	if err != nil {
		return err
	}
	if bad = append(bad, env...); len(bad) > 0 {
		return fmt.Errorf("the tree's shape (docs/development.md):\n  %s", strings.Join(bad, "\n  "))
	}
	return nil
}

// RunTest is `mage test`: the host set up for the tests (Docker,
// debootstrap, etcd, InfluxDB, Chromium… when missing), the engine and the
// registry provisioned, then every test with the integration tag. The
// timeout is per package: the pipeline's runs real releases, the release
// of every service 12.0.21 ships among them.
//
// Three packages' tests run at once (`go test -p 3`, where go test's
// default is one per core): most of their time is spent waiting on
// containers, the engine and servers, not on the cores. The pipeline's
// package, the longest, is listed first so that it starts first (go runs
// packages in the order they are listed); its tests that set the process's
// environment (named TestIntegrationAlone…: a test that calls t.Setenv
// cannot run beside the others of its process, and go runs the parallel
// ones only after every one in series) run in a second go test process,
// beside the first, their output printed when it ends. The tools the tests
// build from Go modules (Consul, cAdvisor, cosign: minutes when cold) are
// built in the background meanwhile, so no test holds a slot waiting for
// one.
func RunTest(ctx context.Context, st settings.Settings) error {
	p := progress.New(nil)
	if _, err := Open(ctx, st, p, Needs{Registry: true, ExportEngine: true, Tests: true}); err != nil {
		return err
	}
	p.Summary("provisioning")
	tools := make(chan error, 1)
	go func() { tools <- testtools.BuildAll(ctx, p) }()
	var aloneOut bytes.Buffer
	aloneArgs := testArgs(true)
	alone := exec.CommandContext(ctx, "go", aloneArgs...)
	alone.Stdout, alone.Stderr = &aloneOut, &aloneOut
	aloneDone := make(chan error, 1)
	if err := alone.Start(); err != nil {
		return fmt.Errorf("go %s: %w", strings.Join(aloneArgs, " "), err)
	}
	go func() { aloneDone <- alone.Wait() }()
	rest := exec.CommandContext(ctx, "go", testArgs(false)...)
	rest.Stdout, rest.Stderr = os.Stdout, os.Stderr
	err := rest.Run()
	aerr := <-aloneDone
	fmt.Printf("=== the pipeline's tests that set the environment, in a process of their own (go %s):\n", strings.Join(aloneArgs, " "))
	os.Stdout.Write(aloneOut.Bytes())
	if terr := <-tools; terr != nil {
		// The tests that need a tool failed on it already, with its error.
		fmt.Fprintf(os.Stderr, "building the test tools in the background: %v\n", terr)
	}
	if aerr != nil {
		err = errors.Join(err, fmt.Errorf("the pipeline's TestIntegrationAlone… tests: %w", aerr))
	}
	return err
}

// aloneTests are the tests that set the process's environment.
const aloneTests = "^TestIntegrationAlone"

// testArgs are RunTest's go test command lines: the tests that set the
// environment (alone), or every other test.
func testArgs(alone bool) []string {
	args := []string{"test", "-tags", "integration", "-count=1", "-timeout", "60m", "-v"}
	if alone {
		return append(args, "-run", aloneTests, "./pipeline")
	}
	return append(args, "-p", "3", "-skip", aloneTests, "./pipeline", "./...")
}
