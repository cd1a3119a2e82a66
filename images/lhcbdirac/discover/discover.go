// Package discover is dirac-discover: the lookups seed 002's guestutils.py
// gave containers, answered from the registrator's entries in etcd and
// the task's own environment as Marathon and Mesos set it.
//
//	dirac-discover nodes SERVICE [PORT-NAME…]   one line per running task: host[:port…]
//	dirac-discover port NAME                    this task's port NAME inside the container
//	dirac-discover host-port NAME               this task's port NAME on the agent ($PORT_<NAME>)
//	dirac-discover host                         the agent this task runs on ($HOST)
//	dirac-discover name                         this task's id ($MESOS_TASK_ID)
//	dirac-discover service                      this task's app id ($MARATHON_APP_ID)
//	dirac-discover specific-host SERVICE TASK
//	dirac-discover specific-port SERVICE TASK NAME           on the agent
//	dirac-discover specific-exposed-port SERVICE TASK NAME   inside the container
//
// SERVICE is an app id (/lhcb/web) or a DIRAC component
// (DataManagement/FileCatalog). etcd is $ETCD_ENDPOINTS (comma-separated),
// the entries under $ETCD_PREFIX. Unlike guestutils, a missing port or task
// is an error naming it, never the literal "default".
package discover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/internal/entry"
)

const usage = `usage: dirac-discover COMMAND [ARGS]
  nodes SERVICE [PORT-NAME...]   host[:port...] of every running task of SERVICE
  port NAME                      this task's port NAME inside the container
  host-port NAME                 this task's port NAME on the agent
  host | name | service          this task's agent, task id, app id
  specific-host SERVICE TASK
  specific-port SERVICE TASK NAME
  specific-exposed-port SERVICE TASK NAME
SERVICE is an app id (/lhcb/web) or a DIRAC component (DataManagement/FileCatalog).
etcd: $ETCD_ENDPOINTS, entries under $ETCD_PREFIX (default ` + entry.DefaultPrefix + `).
`

// Run executes one command and returns the exit code: 0, 1 for a lookup
// that found nothing or failed, 2 for bad usage.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	arity := map[string][2]int{"nodes": {1, -1}, "port": {1, 1}, "host-port": {1, 1}, "host": {0, 0}, "name": {0, 0}, "service": {0, 0},
		"specific-host": {2, 2}, "specific-port": {3, 3}, "specific-exposed-port": {3, 3}}
	a, ok := arity[cmd]
	if !ok || len(args) < a[0] || (a[1] >= 0 && len(args) > a[1]) {
		fmt.Fprintf(stderr, "dirac-discover: bad command line %q\n%s", strings.Join(append([]string{cmd}, args...), " "), usage)
		return 2
	}
	for i, a := range args {
		if strings.TrimSpace(a) == "" {
			// An empty task or service would match by prefix: the first
			// task of anything.
			fmt.Fprintf(stderr, "dirac-discover %s: argument %d is empty: a name is required\n%s", cmd, i+1, usage)
			return 2
		}
	}
	out, err := run(ctx, cmd, args, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "dirac-discover %s: %v\n", cmd, err)
		return 1
	}
	for _, l := range out {
		fmt.Fprintln(stdout, l)
	}
	return 0
}

func run(ctx context.Context, cmd string, args []string, getenv func(string) string) ([]string, error) {
	self := func(k string) ([]string, error) {
		if v := getenv(k); v != "" {
			return []string{v}, nil
		}
		return nil, fmt.Errorf("$%s is not set: not inside a Marathon task", k)
	}
	switch cmd {
	case "host":
		return self("HOST")
	case "name":
		return self("MESOS_TASK_ID")
	case "service":
		return self("MARATHON_APP_ID")
	case "host-port":
		// Marathon's PORT_<NAME>: the name upper-cased as it is.
		return self("PORT_" + strings.ToUpper(args[0]))
	}
	entries, err := lookup(ctx, getenv, cmd, args)
	if err != nil {
		return nil, err
	}
	switch cmd {
	case "nodes":
		var out []string
		for _, e := range entries {
			line := e.Host
			for _, name := range args[1:] {
				p, ok := e.Port(name)
				if !ok {
					return nil, fmt.Errorf("task %s of %s has no port named %q (it has %s)", e.Task, e.App, name, portNames(e))
				}
				line += fmt.Sprintf(":%d", p.Host)
			}
			out = append(out, line)
		}
		return out, nil
	case "port":
		p, ok := entries[0].Port(args[0])
		if !ok {
			return nil, fmt.Errorf("this task (%s) has no port named %q (it has %s)", entries[0].Task, args[0], portNames(entries[0]))
		}
		return []string{fmt.Sprint(containerPort(p))}, nil
	case "specific-host":
		return []string{entries[0].Host}, nil
	case "specific-port", "specific-exposed-port":
		p, ok := entries[0].Port(args[2])
		if !ok {
			return nil, fmt.Errorf("task %s of %s has no port named %q (it has %s)", entries[0].Task, entries[0].App, args[2], portNames(entries[0]))
		}
		if cmd == "specific-port" {
			return []string{fmt.Sprint(p.Host)}, nil
		}
		return []string{fmt.Sprint(containerPort(p))}, nil
	}
	return nil, fmt.Errorf("unknown command %q", cmd)
}

// containerPort is where the service listens: the container port, or the
// host port itself with host networking.
func containerPort(p entry.Port) int {
	if p.Container != 0 {
		return p.Container
	}
	return p.Host
}

// lookup reads the entries a command needs: every task of a service, one
// task of a service, or this task's own.
func lookup(ctx context.Context, getenv func(string) string, cmd string, args []string) ([]entry.Entry, error) {
	var app, task string
	switch cmd {
	case "nodes":
		app = entry.AppID(args[0])
	case "port":
		app, task = getenv("MARATHON_APP_ID"), getenv("MESOS_TASK_ID")
		if app == "" || task == "" {
			return nil, errors.New("$MARATHON_APP_ID and $MESOS_TASK_ID are not set: not inside a Marathon task")
		}
	default:
		app, task = entry.AppID(args[0]), args[1]
	}
	// The names become etcd keys: a service must be an app id (whole
	// segments), a task one segment — "x/y" would reach another app's.
	if err := entry.CheckApp(app); err != nil {
		return nil, fmt.Errorf("service: %v", err)
	}
	if task != "" || cmd != "nodes" {
		if err := entry.CheckTask(task); err != nil {
			return nil, fmt.Errorf("task: %v", err)
		}
	}
	eps := getenv("ETCD_ENDPOINTS")
	if eps == "" {
		return nil, errors.New("$ETCD_ENDPOINTS is not set")
	}
	if strings.Contains(eps, "@") {
		return nil, errors.New("$ETCD_ENDPOINTS holds credentials (user:password@): give endpoints only")
	}
	prefix := getenv("ETCD_PREFIX")
	if prefix == "" {
		prefix = entry.DefaultPrefix
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(eps, ","), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", eps, err)
	}
	defer cli.Close()
	key, opts := entry.AppKey(prefix, app), []clientv3.OpOption{clientv3.WithPrefix()}
	if task != "" {
		key, opts = entry.Key(prefix, app, task), nil
	}
	resp, err := cli.Get(ctx, key, opts...)
	if err != nil {
		return nil, fmt.Errorf("etcd %s: reading %s: %w", eps, key, err)
	}
	var out []entry.Entry
	for _, kv := range resp.Kvs {
		// The app's prefix is also its sub-apps': /lhcb/ holds
		// /lhcb/web/…, which is not /lhcb's.
		if a, t, ok := entry.SplitKey(prefix, string(kv.Key)); !ok || a != app || (task != "" && t != task) {
			continue
		}
		e, err := entry.Decode(string(kv.Key), kv.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		if task != "" {
			return nil, fmt.Errorf("no running task %s of %s in etcd (%s)", task, app, key)
		}
		return nil, fmt.Errorf("no running task of %s in etcd (%s)", app, key)
	}
	entry.Sort(out)
	return out, nil
}

func portNames(e entry.Entry) string {
	if len(e.Ports) == 0 {
		return "no ports"
	}
	var n []string
	for _, p := range e.Ports {
		n = append(n, p.Name)
	}
	return strings.Join(n, ", ")
}
