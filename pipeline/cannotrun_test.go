package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/report"
)

// TestCannotRunIsNeitherPassedNorFailed: a service the catalog says
// cannot run here is in the summary with its reason, in report.html and
// the release notes as "cannot run here" with the reason, and not in the
// smoke attestation; a failed one still shows its log.
func TestCannotRunIsNeitherPassedNorFailed(t *testing.T) {
	dist := t.TempDir()
	c, err := ConfigFor("v12.0.21", env("LHCBDIRAC_DIST", dist), "127.0.0.1:5000")
	if err != nil {
		t.Fatal(err)
	}
	const why = "cannot run here: an OpenSearch cluster for Monitoring/MonitoringDB (MonitoringDB is an OpenSearch database)"
	now := time.Now()
	svcs := []images.ServiceResult{
		{Service: "Framework/Notification", Checks: []images.Check{{Name: images.CheckHealth, Passed: true, At: now}, {Name: images.CheckPing, Passed: true, At: now}}},
		{Service: "Monitoring/Monitoring", CannotRun: why},
		{Service: "Framework/Broken", Err: errors.New("health check failed"), Log: "Traceback: boom", Checks: []images.Check{{Name: images.CheckHealth, At: now}}},
	}
	if svcs[1].Passed() || !svcs[0].Passed() {
		t.Fatal("a cannot-run service counts as passed")
	}
	if got := images.PingerSummary(images.SmokeResult{Passed: true, Services: svcs}); got != "passed (2 pings)" {
		t.Errorf("the pinger's summary counts a service that was not run: %q", got)
	}
	r := &Release{Config: c, S: &Session{P: progress.New(nil)},
		Smoked: &Smoked{Images: map[string]images.SmokeResult{images.LHCbDIRAC: {Services: svcs, Summary: "FAILED (1 of 2 services; 1 cannot run here)"}}}}
	var sum strings.Builder
	r.WriteSummary(&sum)
	if !strings.Contains(sum.String(), "Monitoring/Monitoring: "+why) {
		t.Errorf("the summary does not give the reason:\n%s", sum.String())
	}
	if !strings.Contains(sum.String(), "Framework/Broken did not pass its smoke test") || strings.Contains(sum.String(), "Monitoring/Monitoring did not pass") {
		t.Errorf("the summary's failures:\n%s", sum.String())
	}
	w, err := report.Write(dist, r.Report(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	reason := strings.TrimPrefix(why, "cannot run here: ")
	notes, _ := os.ReadFile(w.Notes)
	if !strings.Contains(string(notes), "1 of 3 services passed, 1 failed, 1 cannot run here") || !strings.Contains(string(notes), "cannot run here: "+reason) {
		t.Errorf("the release notes:\n%s", notes)
	}
	page, _ := os.ReadFile(filepath.Join(dist, report.HTMLName))
	if !strings.Contains(string(page), "cannot run here") || !strings.Contains(string(page), "OpenSearch cluster for Monitoring/MonitoringDB") {
		t.Error("report.html does not say Monitoring/Monitoring cannot run here, and why")
	}
	pred, err := smokeOf(r.Smoked, images.LHCbDIRAC, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range pred.Services {
		if s.Name == "Monitoring/Monitoring" {
			t.Error("the smoke attestation records a service that was not run")
		}
	}
}
