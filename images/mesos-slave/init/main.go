// Command mesos-slave-init is the entry process of the mesos-slave image.
//
//	mesos-slave-init          resolve the configuration from the environment,
//	                          write supervisord's files, exec supervisord
//	mesos-slave-init redpill  the watchdog supervisord runs (see package mesosslave)
//	mesos-slave-init config   print the resolved configuration and exit
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/internal/shellenv"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/mesos-slave/slaveinit"
)

func logf(tag, format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[%s][%s] %s\n", time.Now().UTC().Format(time.RFC3339), tag, fmt.Sprintf(format, a...))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	c, err := slaveinit.Resolve(ctx, shellenv.Environ(os.Environ()), slaveinit.RealHooks())
	if err != nil {
		logf("Init", "configuration error: %v", err)
		os.Exit(1)
	}
	mode := ""
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "redpill":
		if err := slaveinit.Watch(ctx, c.Watchdog, slaveinit.CLI{Config: slaveinit.SupervisorConf}, 5*time.Second, os.Stderr); err != nil {
			os.Exit(1)
		}
	case "config":
		for _, kv := range c.EnvList() {
			fmt.Println(kv)
		}
		for _, p := range c.Programs {
			fmt.Printf("program %s enabled=%v command=%q\n", p.Name, p.Enabled, p.Command)
		}
		for _, w := range c.Warnings {
			fmt.Println("warning:", w)
		}
	case "", "init":
		for _, w := range c.Warnings {
			logf("Init", "warning: %s", w)
		}
		logf("App-Name", "%s", c.Env["APP_NAME"])
		logf("Environment", "%s", c.Env["ENVIRONMENT"])
		for _, p := range c.Programs {
			logf("Init", "%s: enabled=%v %s", p.Name, p.Enabled, strings.Join(p.Command, " "))
		}
		if err := slaveinit.WriteSupervisor(c, "/"); err != nil {
			logf("Init", "writing supervisord's configuration: %v", err)
			os.Exit(1)
		}
		bin, err := exec.LookPath("supervisord")
		if err != nil {
			logf("Init", "supervisord is not installed: %v", err)
			os.Exit(1)
		}
		// supervisord becomes PID 1, with the resolved environment, which
		// every program inherits.
		if err := syscall.Exec(bin, []string{"supervisord", "-n", "-c", slaveinit.SupervisorConf}, c.EnvList()); err != nil {
			logf("Init", "exec supervisord: %v", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintf(os.Stderr, "usage: mesos-slave-init [init|redpill|config]\n")
		os.Exit(2)
	}
}
