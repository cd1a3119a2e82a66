// Command standin-agent is a STAND-IN for the Mesos agent (mesos-slave),
// which cannot be installed here. The offline mesos-slave base installs it
// as /usr/sbin/mesos-slave so the image's init, supervision, log shipping
// and watchdog are exercised exactly as with the real agent.
//
// Like the agent it reads its flags from MESOS_* variables, refuses to start
// without MESOS_MASTER, writes glog-style files into MESOS_LOG_DIR and
// listens on MESOS_PORT (5051) with /state. STANDIN_AGENT=crash makes it
// exit with status 1 at once, to prove the watchdog.
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

func main() {
	if os.Getenv("STANDIN_AGENT") == "crash" {
		fmt.Fprintln(os.Stderr, "STAND-IN mesos-slave: crashing as told (STANDIN_AGENT=crash)")
		os.Exit(1)
	}
	flags := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "MESOS_") {
			flags[strings.ToLower(strings.TrimPrefix(k, "MESOS_"))] = v
		}
	}
	if flags["master"] == "" {
		fmt.Fprintln(os.Stderr, "STAND-IN mesos-slave: Missing required option --master (MESOS_MASTER)")
		os.Exit(1)
	}
	port := flags["port"]
	if port == "" {
		port = "5051"
	}
	var info *os.File
	if dir := flags["log_dir"]; dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "STAND-IN mesos-slave:", err)
			os.Exit(1)
		}
		f, err := os.OpenFile(filepath.Join(dir, "mesos-slave.INFO"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "STAND-IN mesos-slave:", err)
			os.Exit(1)
		}
		info = f
	}
	logf := func(format string, a ...any) {
		line := fmt.Sprintf("I%s standin-agent] %s\n", time.Now().UTC().Format("0102 15:04:05.000000"), fmt.Sprintf(format, a...))
		os.Stderr.WriteString(line)
		if info != nil {
			info.WriteString(line)
		}
	}
	names := make([]string, 0, len(flags))
	for k := range flags {
		names = append(names, k)
	}
	sort.Strings(names)
	logf("STAND-IN mesos-slave (not Mesos) starting; flags: %s", strings.Join(names, ","))
	http.HandleFunc("/state", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"standin": true, "flags": flags})
	})
	go func() {
		for range time.Tick(2 * time.Second) {
			logf("registered with master %s (stand-in heartbeat)", flags["master"])
		}
	}()
	if err := http.ListenAndServe(":"+port, nil); err != nil {
		logf("listen: %v", err)
		os.Exit(1)
	}
}
