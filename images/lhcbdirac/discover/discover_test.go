//go:build integration

package discover

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/internal/entry"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/etcdtest"
)

// dirac-discover against a real etcd (Debian's) holding entries as the
// registrator writes them.
func TestLookups(t *testing.T) {
	e := etcdtest.Start(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	for _, en := range []entry.Entry{
		{App: "/datamanagement/filecatalog", Task: "datamanagement_filecatalog.instance-b._app.1", Host: "lbvobox2", Ports: []entry.Port{{Name: "dips", Host: 31002, Container: 9197}}},
		{App: "/datamanagement/filecatalog", Task: "datamanagement_filecatalog.instance-a._app.1", Host: "lbvobox1", Ports: []entry.Port{{Name: "dips", Host: 31001, Container: 9197}}},
		{App: "/lhcb/zookeeper", Task: "lhcb_zookeeper.instance-z._app.1", Host: "lbvobox3", Ports: []entry.Port{{Name: "client", Host: 2181}, {Name: "peer", Host: 2888}}},
	} {
		if _, err := cli.Put(ctx, entry.Key(entry.DefaultPrefix, en.App, en.Task), en.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	self := map[string]string{"ETCD_ENDPOINTS": e.Endpoint, "MARATHON_APP_ID": "/datamanagement/filecatalog",
		"MESOS_TASK_ID": "datamanagement_filecatalog.instance-a._app.1", "HOST": "lbvobox1", "PORT_DIPS": "31001"}
	run := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := Run(ctx, args, func(k string) string { return self[k] }, &out, &errb)
		return out.String(), errb.String(), code
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"nodes", "DataManagement/FileCatalog", "dips"}, "lbvobox1:31001\nlbvobox2:31002\n"},
		{[]string{"nodes", "/datamanagement/filecatalog"}, "lbvobox1\nlbvobox2\n"},
		{[]string{"nodes", "/lhcb/zookeeper", "client", "peer"}, "lbvobox3:2181:2888\n"},
		{[]string{"port", "dips"}, "9197\n"},
		{[]string{"host-port", "dips"}, "31001\n"},
		{[]string{"host"}, "lbvobox1\n"},
		{[]string{"name"}, "datamanagement_filecatalog.instance-a._app.1\n"},
		{[]string{"service"}, "/datamanagement/filecatalog\n"},
		{[]string{"specific-host", "DataManagement/FileCatalog", "datamanagement_filecatalog.instance-b._app.1"}, "lbvobox2\n"},
		{[]string{"specific-port", "DataManagement/FileCatalog", "datamanagement_filecatalog.instance-b._app.1", "dips"}, "31002\n"},
		{[]string{"specific-exposed-port", "DataManagement/FileCatalog", "datamanagement_filecatalog.instance-b._app.1", "dips"}, "9197\n"},
		{[]string{"specific-exposed-port", "/lhcb/zookeeper", "lhcb_zookeeper.instance-z._app.1", "peer"}, "2888\n"},
	} {
		out, errs, code := run(c.args...)
		if code != 0 || out != c.want {
			t.Errorf("%v: exit %d, %q (want %q) %s", c.args, code, out, c.want, errs)
		}
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"nodes", "/lhcb/zookeeper", "election"}, 1, `task lhcb_zookeeper.instance-z._app.1 of /lhcb/zookeeper has no port named "election" (it has client, peer)`},
		{[]string{"nodes", "Framework/Nothing"}, 1, "no running task of /framework/nothing in etcd"},
		{[]string{"specific-host", "/lhcb/zookeeper", "gone"}, 1, "no running task gone of /lhcb/zookeeper"},
		{[]string{"port"}, 2, "bad command line"},
		{[]string{"frobnicate"}, 2, "bad command line"},
		{[]string{"host-port", "metrics"}, 1, "$PORT_METRICS is not set"},
		// Names match whole segments: /datamanagement and /lhcb run no
		// task, though their keys' prefix is /datamanagement/filecatalog's
		// and /lhcb/zookeeper's.
		{[]string{"nodes", "DataManagement"}, 1, "no running task of /datamanagement in etcd"},
		{[]string{"nodes", "/lhcb"}, 1, "no running task of /lhcb in etcd"},
		{[]string{"nodes", "/lhcb/"}, 1, "no running task of /lhcb in etcd"},
		// A task id is one segment: with a '/' it would name another app's task.
		{[]string{"specific-host", "/lhcb", "zookeeper/lhcb_zookeeper.instance-z._app.1"}, 1, `task id "zookeeper/lhcb_zookeeper.instance-z._app.1"`},
		{[]string{"specific-port", "/lhcb", "zookeeper/lhcb_zookeeper.instance-z._app.1", "client"}, 1, "no '/'"},
		// Empty names are refused, not matched as a prefix.
		{[]string{"specific-host", "DataManagement/FileCatalog", ""}, 2, "argument 2 is empty"},
		{[]string{"specific-exposed-port", "DataManagement/FileCatalog", "datamanagement_filecatalog.instance-b._app.1", ""}, 2, "argument 3 is empty"},
		{[]string{"nodes", ""}, 2, "argument 1 is empty"},
		{[]string{"nodes", " "}, 2, "argument 1 is empty"},
		{[]string{"nodes", "/lhcb/../lhcb/zookeeper"}, 1, `app id "/lhcb/../lhcb/zookeeper"`},
	} {
		_, errs, code := run(c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d %q, want %d and %q", c.args, code, errs, c.code, c.want)
		}
	}
	self["ETCD_ENDPOINTS"] = "http://user:secret@" + strings.TrimPrefix(e.Endpoint, "http://")
	if _, errs, code := run("nodes", "DataManagement/FileCatalog"); code != 1 || strings.Contains(errs, "secret") || !strings.Contains(errs, "$ETCD_ENDPOINTS holds credentials") {
		t.Errorf("credentials in ETCD_ENDPOINTS: exit %d %q", code, errs)
	}
	self["ETCD_ENDPOINTS"] = e.Endpoint
	e.Stop()
	if _, errs, code := run("nodes", "DataManagement/FileCatalog"); code != 1 || !strings.Contains(errs, "etcd "+e.Endpoint) {
		t.Errorf("etcd down: exit %d %q", code, errs)
	}
}
