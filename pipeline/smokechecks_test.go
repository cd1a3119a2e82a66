package pipeline

import (
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images"
	smokeattest "github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/smoke"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

// TestHTTPSPingIsAttestedAsOne: a Tornado service's ping is an https-ping
// in the smoke attestation (not a DIPS one), it vouches for the pinger as a
// DIPS ping does, and it reads back as the same check when a later release
// finds it attested.
func TestHTTPSPingIsAttestedAsOne(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	tornado := render.App{ID: "/framework-tornadonotification", JSON: []byte(`{"id":"/framework-tornadonotification"}`)}
	tornado.Service.Name, tornado.Service.Protocol = "Framework/TornadoNotification", services.ProtocolHTTPS
	dips := render.App{ID: "/framework-notification", JSON: []byte(`{"id":"/framework-notification"}`)}
	dips.Service.Name = "Framework/Notification"
	svcs := []images.ServiceResult{
		{Service: dips.Service.Name, App: dips, Checks: []images.Check{{Name: images.CheckHealth, Passed: true, At: now}, {Name: images.PingCheck(dips.Service.Protocol), Passed: true, At: now}}},
		{Service: tornado.Service.Name, App: tornado, Checks: []images.Check{{Name: images.CheckHealth, Passed: true, At: now}, {Name: images.PingCheck(tornado.Service.Protocol), Passed: true, At: now}}},
	}
	sm := &Smoked{Images: map[string]images.SmokeResult{images.LHCbDIRAC: {Passed: true, Services: svcs}}}
	kinds := func(imageName string) map[string][]string {
		pred, err := smokeOf(sm, imageName, "")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]string{}
		for _, s := range pred.Services {
			for _, c := range s.Checks {
				out[s.Name] = append(out[s.Name], c.Kind)
			}
			back := checksOf(s)
			for i, c := range back {
				if imageName == images.LHCbDIRAC && c.Name != svcs[indexOf(svcs, s.Name)].Checks[i].Name {
					t.Errorf("%s: attested %s reads back as %q", s.Name, s.Checks[i].Kind, c.Name)
				}
			}
		}
		return out
	}
	got := kinds(images.LHCbDIRAC)
	if k := got[tornado.Service.Name]; len(k) != 2 || k[1] != smokeattest.CheckHTTPSPing {
		t.Errorf("the Tornado service's checks are attested as %v", k)
	}
	if k := got[dips.Service.Name]; len(k) != 2 || k[1] != smokeattest.CheckDIPSPing {
		t.Errorf("the DIPS service's checks are attested as %v", k)
	}
	pinger := kinds(images.Pinger)
	if k := pinger[tornado.Service.Name]; len(k) != 1 || k[0] != smokeattest.CheckHTTPSPing {
		t.Errorf("the pinger is not vouched for by the HTTPS ping that went through it: %v", k)
	}
}

func indexOf(svcs []images.ServiceResult, name string) int {
	for i, s := range svcs {
		if s.Service == name {
			return i
		}
	}
	return -1
}
