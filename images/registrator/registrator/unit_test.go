package registrator

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// The same rule without real parts, over more URLs: the one check that
// decides.
func TestAllowedCheck(t *testing.T) {
	rules, err := parseCheckPolicy(CheckPolicy{Pinger: "http://lbdiracgw:1234", Allow: []string{"https://monitor.cern.ch/probe", "http://{host}:{port}/status"}}, EnvPinger, EnvCheckAllow)
	if err != nil {
		t.Fatal(err)
	}
	for u, want := range map[string]bool{
		"http://lbdiracgw:1234/ping?host=h&port=1&service=A/B":       true,
		"http://LBDIRACGW:1234/ping?host=h":                          true,
		"http://lbdiracgw:1234/ping/?host=h":                         true,
		"https://monitor.cern.ch/probe/dirac?x=1":                    true,
		"https://monitor.cern.ch/probe":                              true,
		"http://agent1:31000/status":                                 true,
		"http://agent1:31000/status/x":                               true,
		"http://lbdiracgw:1234/":                                     false,
		"http://lbdiracgw:1234/metrics":                              false,
		"http://lbdiracgw:1234/ping/x":                               false,
		"http://lbdiracgw:1234/pingx":                                false,
		"http://lbdiracgw:1234/ping/../v1/agent/self":                false,
		"http://lbdiracgw:1234/ping/%2e%2e/v1":                       false,
		"http://lbdiracgw:1234/%70ing":                               false,
		"http://lbdiracgw:1234//ping":                                false,
		"http://lbdiracgw:1234/./ping":                               false,
		"http://lbdiracgw:1234/ping#frag":                            false,
		"http://u:p@lbdiracgw:1234/ping":                             false,
		"http://lbdiracgw:1234@169.254.169.254/ping":                 false,
		"http://lbdiracgw:4321/ping":                                 false,
		"http://lbdiracgw/ping":                                      false,
		"https://lbdiracgw:1234/ping":                                false,
		"http://lbdiracgw.attacker.example:1234/ping":                false,
		"https://monitor.cern.ch/probe/../../latest/meta-data":       false,
		"https://monitor.cern.ch/prober":                             false,
		"http://monitor.cern.ch/probe":                               false,
		"http://agent1:31001/status":                                 false, // another port than the task's
		"http://agent2:31000/status":                                 false, // another host
		"http://agent1:31000/":                                       false,
		"http://169.254.169.254/latest/meta-data/":                   false,
		"file:///etc/passwd":                                         false,
		"gopher://lbdiracgw:1234/ping":                               false,
		"http:lbdiracgw:1234/ping":                                   false,
		"http://lbdiracgw:1234/ping\\..\\x":                          false,
		"http://[::1]:1234/ping":                                     false,
		"http://lbdiracgw:1234/ping%00":                              false,
		"http://lbdiracgw:1234/ping;/../../v1/agent/self":            false,
		"http://lbdiracgw:1234/ping?host=h#@169.254.169.254/latest/": false,
	} {
		if got := allowedCheck(u, rules, "agent1", 31000); got != want {
			t.Errorf("%s: allowed %v, want %v", u, got, want)
		}
	}
	for _, p := range []CheckPolicy{{Pinger: "lbdiracgw:1234"}, {Pinger: "http://u:p@gw:1"}, {Pinger: "http://gw:1/?x=1"}, {Allow: []string{"http://gw/%2e%2e/"}}, {Allow: []string{"ftp://gw/"}}} {
		if _, err := parseCheckPolicy(p, EnvPinger, EnvCheckAllow); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
	if !slices.ContainsFunc(rules, func(c checkPrefix) bool { return c.exact }) {
		t.Error("the pinger's prefix is not exact")
	}
}

// Task ids, hosts and app ids become keys, Consul ids and check URLs:
// refused when they are not Marathon's, never written.
func TestWantsRefuseBadIDs(t *testing.T) {
	rules := &checkRules{minInterval: time.Second}
	a := app{ID: "/lhcb/web", Tasks: []task{
		{ID: "lhcb_web.instance-1._app.1", Host: "agent1", State: "TASK_RUNNING"},
		{ID: "x/lhcb_web.instance-2._app.1", Host: "agent1", State: "TASK_RUNNING"},
		{ID: "", Host: "agent1", State: "TASK_RUNNING"},
		{ID: "..", Host: "agent1", State: "TASK_RUNNING"},
		{ID: "lhcb_web.instance-3._app.1", Host: "agent1/../x", State: "TASK_RUNNING"},
		{ID: "lhcb_web.instance-4._app.1", Host: "a&service=x", State: "TASK_RUNNING"},
		{ID: "lhcb_web.instance-5._app.1", Host: "10.0.0.1", State: "TASK_RUNNING"},
	}}
	var got []string
	for _, w := range a.wants(rules) {
		got = append(got, fmt.Sprintf("%s:%s", w.Task, w.refusedReason))
	}
	want := []string{"lhcb_web.instance-1._app.1:", "x/lhcb_web.instance-2._app.1:bad_id", ":bad_id", "..:bad_id",
		"lhcb_web.instance-3._app.1:bad_host", "lhcb_web.instance-4._app.1:bad_host", "lhcb_web.instance-5._app.1:"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	for _, id := range []string{"/lhcb/../x", "/lhcb//x", "/LHCb/web", "/lhcb/web/", "lhcb", "/-x", "/x-"} {
		for _, w := range (app{ID: id, Tasks: []task{{ID: "t.1", Host: "h", State: "TASK_RUNNING"}}}).wants(rules) {
			if w.refusedReason != ReasonBadID {
				t.Errorf("app id %q admitted", id)
			}
		}
	}
	if _, _, _, err := classify("status_update_event", `{"appId":"/lhcb/../x"}`); err != nil {
		t.Error(err)
	}
	if id, all, _, _ := classify("status_update_event", `{"appId":"/lhcb/x y"}`); id != "" || !all {
		t.Errorf("a bad app id in an event: %q %v, want a full read", id, all)
	}
}

func TestBackoffJitterAndCap(t *testing.T) {
	b := backoffFrom(500*time.Millisecond, 30*time.Second)
	for i, cur := 0, 500*time.Millisecond; i < 12; i++ {
		d := b.next()
		if d < cur/2 || d > cur {
			t.Errorf("wait %d: %s, want between %s and %s", i, d, cur/2, cur)
		}
		cur = min(2*cur, 30*time.Second)
	}
	b.reset()
	if d := b.next(); d > 500*time.Millisecond {
		t.Errorf("after reset: %s", d)
	}
}

func TestConfigFromEnv(t *testing.T) {
	base := map[string]string{"MARATHON_URL": "http://marathon:8080", "ETCD_ENDPOINTS": "http://etcd:2379"}
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{EnvPinger: "lbdiracgw:1234"}, `REGISTRATOR_PINGER_URL="lbdiracgw:1234": want an http(s)://host[:port][/path] URL`},
		{map[string]string{EnvPinger: "http://u:pw@gw:1234"}, "no credentials in a check URL"},
		{map[string]string{EnvCheckAllow: "http://ok/ ftp://no/"}, `REGISTRATOR_CHECK_ALLOW: "ftp://no/"`},
		{map[string]string{EnvCheckMinInterval: "1ms"}, `REGISTRATOR_CHECK_MIN_INTERVAL="1ms": want a duration of at least 1s`},
		{map[string]string{EnvMaxAnswer: "0"}, `REGISTRATOR_MARATHON_MAX_MIB="0"`},
		{map[string]string{"ETCD_ENDPOINTS": "http://root:hunter2@etcd:2379"}, "ETCD_ENDPOINTS: an endpoint holds credentials"},
		{map[string]string{"CONSUL_HTTP_ADDR": "http://a:hunter2@consul:8500"}, "CONSUL_HTTP_ADDR holds credentials"},
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range c.env {
			env[k] = v
		}
		_, _, err := ConfigFromEnv(func(k string) string { return env[k] })
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%v: %v, want %q", c.env, err, c.want)
		}
	}
	env := map[string]string{"MARATHON_URL": "http://m:8080", "CONSUL_HTTP_ADDR": "127.0.0.1:8500", EnvPinger: "http://gw:1234",
		EnvCheckAllow: "http://{host}:{port}/status https://mon/", EnvCheckMinInterval: "20s", EnvMaxAnswer: "100"}
	cfg, _, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Checks.Pinger != "http://gw:1234" || len(cfg.Checks.Allow) != 2 || cfg.Checks.MinInterval != 20*time.Second || cfg.Marathon.MaxAnswer != 100<<20 {
		t.Errorf("%+v", cfg)
	}
}

func TestScrub(t *testing.T) {
	r := &Registrator{cfg: Config{Secrets: []string{"", "pw", "t0ken-value"}}}
	for in, want := range map[string]string{
		"Authorization: Basic dXNlcjpwdw==\nnext":     "Authorization: **** next",
		`{"authorization":"token=abc.def"}`:           `{"authorization":"****"}`,
		"sent Basic dXNlcjpwdw== and Bearer eyJhbGci": "sent Basic **** and Bearer ****",
		"http://user:pw@marathon:8080/v2/apps":        "http://****@marathon:8080/v2/apps",
		"the t0ken-value leaked":                      "the **** leaked",
		"?token=abc&password=xyz":                     "?token=****&password=****",
		"bell\x07 and \x1b[31m":                       "bell  and  [31m",
	} {
		if got := r.scrub(in); got != want {
			t.Errorf("scrub(%q) = %q, want %q", in, got, want)
		}
	}
	if got := r.scrub(strings.Repeat("a", 10000) + " too long"); len(got) > maxMessage+40 || !strings.HasSuffix(got, "too long") {
		t.Errorf("%d bytes: %q", len(got), got[len(got)-40:])
	}
}
