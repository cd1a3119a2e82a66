package registry

import (
	"slices"
	"testing"
)

// The user's registry comes back with Docker; a test's must not (a killed
// test run would leave it restarting, maybe on a removed mount, forever).
func TestOnlyTheUsersRegistryIsRestartedByDocker(t *testing.T) {
	policy := func(in Instance) string {
		args := in.runArgs("registry@sha256:0")
		i := slices.Index(args, "--restart")
		if i < 0 || i+1 == len(args) {
			t.Fatalf("no --restart in %q", args)
		}
		return args[i+1]
	}
	if got := policy(Instance{Name: "lhcbdirac-registry", Addr: "127.0.0.1:5000"}); got != "unless-stopped" {
		t.Errorf("the user's registry: --restart %s, want unless-stopped", got)
	}
	if got := policy(Instance{Name: "lhcbdirac-registry-test", Addr: "127.0.0.1:5999", Ephemeral: true}); got != "no" {
		t.Errorf("a test's registry: --restart %s, want no", got)
	}
}
