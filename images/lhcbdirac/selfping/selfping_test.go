package selfping_test

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/dips/dipstest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/selfping"
)

const svc = "DataManagement/FileCatalog"

// gridSecurity lays out /opt/dirac/etc/grid-security as a service has it:
// hostcert.pem, hostkey.pem, certificates/<hash>.0. The host certificate
// names the host, not localhost: the self-ping must still accept it.
func gridSecurity(t *testing.T) (env map[string]string, srv *dipstest.Server) {
	t.Helper()
	dir := t.TempDir()
	pki, err := dipstest.NewPKI(dir, "Test CA")
	if err != nil {
		t.Fatal(err)
	}
	host, err := pki.Host("host", "dirac-service.example")
	if err != nil {
		t.Fatal(err)
	}
	srv, err = dipstest.Start(dipstest.Options{HostCert: host.CertFile, HostKey: host.KeyFile, CADir: pki.CADir(), Services: []string{svc}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return map[string]string{"DIRAC_X509_HOST_CERT": host.CertFile, "DIRAC_X509_HOST_KEY": host.KeyFile, "X509_CERT_DIR": pki.CADir()}, srv
}

func run(env map[string]string, args ...string) (int, string) {
	var out, errb bytes.Buffer
	code := selfping.Run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
	return code, errb.String()
}

func TestSelfPingExitCodes(t *testing.T) {
	env, srv := gridSecurity(t)
	target := fmt.Sprintf("%d/%s", srv.Port(), svc)

	if code, msg := run(env, target); code != 0 {
		t.Fatalf("healthy service: exit %d: %s", code, msg)
	}
	if peers := srv.Peers(); len(peers) == 0 || !strings.HasSuffix(peers[0], "CN=dirac-service.example") {
		t.Fatalf("the service should see the host certificate, saw %v", peers)
	}

	srv.SetFailure(dipstest.ServiceError)
	code, msg := run(env, target)
	if code != 1 || strings.Count(strings.TrimSpace(msg), "\n") != 0 || !strings.Contains(msg, "injected failure") {
		t.Fatalf("S_ERROR: exit %d, stderr %q: want 1 and one line with the reason", code, msg)
	}

	// A service slower than -timeout: the check gives up on its own bound,
	// well before the service would have answered (it answers S_OK after
	// its delay, so a check that waited would exit 0). The bound is the
	// service's delay, not a speed: a loaded machine stays far below it.
	const delay = 20 * time.Second
	srv.SetFailure(dipstest.Slow)
	srv.SetDelay(delay)
	start := time.Now()
	code, msg = run(env, "-timeout", "400ms", target)
	if took := time.Since(start); code != 1 || took > delay/2 || !strings.Contains(msg, "deadline exceeded") {
		t.Fatalf("slow service: exit %d after %s (%s): the check must give up after -timeout, not wait for the service's %s", code, took, msg, delay)
	}

	for _, bad := range []string{"", "9197", "0/A/B", "9197/DataManagement", "x/A/B", "9197/A/B/C"} {
		args := []string{bad}
		if bad == "" {
			args = nil
		}
		if code, msg := run(env, args...); code != 1 || msg == "" {
			t.Errorf("argument %q: exit %d, stderr %q", bad, code, msg)
		}
	}
	env["DIRAC_X509_HOST_CERT"] = "/nonexistent/hostcert.pem"
	if code, msg := run(env, target); code != 1 || !strings.Contains(msg, "/nonexistent/hostcert.pem") {
		t.Fatalf("missing certificate: exit %d, %q should name the file", code, msg)
	}
}

// TestSelfPingStaticBinary builds the command as the image gets it and runs
// it: statically linked (no ELF interpreter), exit 0 against a live service.
func TestSelfPingStaticBinary(t *testing.T) {
	env, srv := gridSecurity(t)
	bin := filepath.Join(t.TempDir(), "dirac-self-ping")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/dirac-self-ping")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("dirac-self-ping is dynamically linked")
		}
	}
	f.Close()
	target := fmt.Sprintf("%d/%s", srv.Port(), svc)
	cmd := exec.Command(bin, target)
	cmd.Env = cmdEnv(env)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("binary: %v: %s", err, out)
	}
	srv.SetFailure(dipstest.RejectProposal)
	cmd = exec.Command(bin, target)
	cmd.Env = append([]string(nil), cmdEnv(env)...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "1111") {
		t.Fatalf("rejected: %v: %s", err, out)
	}
}

func cmdEnv(env map[string]string) []string {
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// TestProtocolFlag: -protocol takes dips (the default) or https; https
// against a DIPS service fails (it speaks no HTTP), naming the https URL.
func TestProtocolFlag(t *testing.T) {
	env, srv := gridSecurity(t)
	target := fmt.Sprintf("%d/%s", srv.Port(), svc)
	if code, msg := run(env, "-protocol", "http", target); code != 1 || !strings.Contains(msg, `-protocol "http": want dips or https`) {
		t.Fatalf("-protocol http: exit %d: %s", code, msg)
	}
	if code, msg := run(env, "-protocol", "dips", target); code != 0 {
		t.Fatalf("-protocol dips: exit %d: %s", code, msg)
	}
	if code, msg := run(env, "-protocol", "https", "-timeout", "3s", target); code != 1 || !strings.Contains(msg, fmt.Sprintf("https://localhost:%d/%s", srv.Port(), svc)) {
		t.Fatalf("-protocol https against a DIPS service: exit %d: %s", code, msg)
	}
}
