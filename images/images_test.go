package images

import (
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

// The summary says which pings the services that ran passed; a service
// that did not run is not counted.
func TestPingsNameTheProtocolsThatRan(t *testing.T) {
	svc := func(protocol, cannot string) ServiceResult {
		var a render.App
		a.Service.Protocol = protocol
		return ServiceResult{App: a, CannotRun: cannot}
	}
	dips, https := svc(services.ProtocolDIPS, ""), svc(services.ProtocolHTTPS, "")
	notRun := svc(services.ProtocolHTTPS, "cannot run here: an OpenSearch cluster")
	for _, c := range []struct {
		svcs []ServiceResult
		want string
	}{
		{[]ServiceResult{dips, dips, notRun}, "DIPS ping"},
		{[]ServiceResult{https, notRun}, "HTTPS ping"},
		{[]ServiceResult{dips, https, https, notRun}, "DIPS ping, or HTTPS ping for 2 Tornado"},
	} {
		if got := pings(c.svcs); got != c.want {
			t.Errorf("pings: %q, want %q", got, c.want)
		}
	}
	if PingCheck(services.ProtocolHTTPS) != CheckHTTPSPing || PingCheck(services.ProtocolDIPS) != CheckPing || PingCheck("") != CheckPing {
		t.Error("PingCheck names the wrong check")
	}
}

// The summary says when the services passed were not run again.
func TestTheSummarySaysWhichServicesWereAttestedBefore(t *testing.T) {
	ran, reused := ServiceResult{}, ServiceResult{Attested: true}
	for _, c := range []struct {
		svcs []ServiceResult
		want string
	}{
		{[]ServiceResult{ran, ran}, ""},
		{[]ServiceResult{reused, reused}, ", all attested before"},
		{[]ServiceResult{reused, ran, ran}, ", 1 attested before"},
	} {
		if got := attestedOf(c.svcs, len(c.svcs)); got != c.want {
			t.Errorf("attestedOf(%d services): %q, want %q", len(c.svcs), got, c.want)
		}
	}
}
