package dockercli

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestCheckNamesTheFixWhenDockerIsMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "apt-get install docker.io") {
		t.Fatalf("error %v should say how to install Docker", err)
	}
}

func TestCheckNamesTheFixWhenTheDaemonIsDown(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	err := Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "start it") {
		t.Fatalf("error %v should say how to start the daemon", err)
	}
}

func TestNotFoundIsTyped(t *testing.T) {
	_, err := InspectContainer(context.Background(), "lhcbdirac-no-such-container-xyz")
	if err == nil || !isNotFoundErr(err) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	ok, err := ImageExists(context.Background(), "lhcbdirac-no-such-image:xyz")
	if ok || err != nil {
		t.Fatalf("ImageExists = %v, %v", ok, err)
	}
	if err := RemoveContainer(context.Background(), "lhcbdirac-no-such-container-xyz"); err != nil {
		t.Fatalf("removing a missing container must not fail: %v", err)
	}
}

func isNotFoundErr(err error) bool { return errors.Is(err, ErrNotFound) }
