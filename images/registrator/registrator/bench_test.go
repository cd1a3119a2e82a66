//go:build integration

package registrator

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/internal/entry"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
)

// BenchmarkTaskStartToEntry: from a task's TASK_RUNNING in Marathon (its
// startedAt) to its key in etcd (watched) and its instance in Consul.
func BenchmarkTaskStartToEntry(b *testing.B) {
	w := newWorld(b)
	w.start(time.Hour)
	var etcdTotal, consulTotal time.Duration
	for i := 0; b.Loop(); i++ {
		def := web(1)
		def["id"] = fmt.Sprintf("/bench/app%d", i)
		watch := w.kv.Watch(w.ctx, entry.AppKey(entry.DefaultPrefix, def["id"].(string)), clientv3.WithPrefix())
		if _, err := w.mc.PutApp(w.ctx, def["id"].(string), def, client.PutOptions{}); err != nil {
			b.Fatal(err)
		}
		ev := <-watch
		seen := time.Now()
		if len(ev.Events) == 0 {
			b.Fatal("no etcd event")
		}
		e, err := entry.Decode(string(ev.Events[0].Kv.Key), ev.Events[0].Kv.Value)
		if err != nil {
			b.Fatal(err)
		}
		started, err := time.Parse("2006-01-02T15:04:05.000Z", e.StartedAt)
		if err != nil {
			b.Fatal(err)
		}
		for len(w.consulTasks()[def["id"].(string)]) == 0 {
			time.Sleep(time.Millisecond)
		}
		consulSeen := time.Now()
		etcdTotal += seen.Sub(started)
		consulTotal += consulSeen.Sub(started)
	}
	b.ReportMetric(float64(etcdTotal.Microseconds())/1000/float64(b.N), "ms-to-etcd")
	b.ReportMetric(float64(consulTotal.Microseconds())/1000/float64(b.N), "ms-to-consul")
}

// BenchmarkEventThroughput: 50 apps of 4 tasks created at once; the
// events Marathon emits for them per second until etcd and Consul hold all
// 200 tasks.
func BenchmarkEventThroughput(b *testing.B) {
	w := newWorld(b)
	r, _ := w.start(time.Hour)
	const apps, per = 50, 4
	var events float64
	var took time.Duration
	for i := 0; b.Loop(); i++ {
		before := testutil.ToFloat64(r.m.events.WithLabelValues("status_update_event"))
		start := time.Now()
		want := map[string]int{}
		for a := range apps {
			def := web(per)
			def["id"] = fmt.Sprintf("/bench%d/app%d", i, a)
			want[def["id"].(string)] = per
			if _, err := w.mc.PutApp(w.ctx, def["id"].(string), def, client.PutOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		for {
			n := 0
			for app, ids := range w.etcdTasks() {
				if want[app] > 0 {
					n += len(ids)
				}
			}
			c := 0
			for app, ids := range w.consulTasks() {
				if want[app] > 0 {
					c += len(ids)
				}
			}
			if n == apps*per && c == apps*per {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		took += time.Since(start)
		events += testutil.ToFloat64(r.m.events.WithLabelValues("status_update_event")) - before
	}
	b.ReportMetric(events/took.Seconds(), "status-events/s")
	b.ReportMetric(float64(apps*per*b.N)/took.Seconds(), "tasks-registered/s")
}
