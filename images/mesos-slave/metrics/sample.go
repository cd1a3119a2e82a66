// Package metrics is the mesos-slave image's collector: every interval it
// reads the newest samples of the node's DIRAC containers — from cAdvisor
// when one is given (seed 000's simpleParseCAdvisor.py, its API and flags
// kept), otherwise from the Docker Engine API — and writes them to
// InfluxDB with the seed's measurements and tags. Counters become rates
// computed from consecutive samples; points wait in a bounded buffer while
// InfluxDB is away.
package metrics

import (
	"time"
)

// LabelComponent marks a DIRAC container (the rendered apps set it as a
// docker label).
const LabelComponent = "dirac_component"

// Sample is one reading of one container (or, ID "/", of the machine).
type Sample struct {
	ID        string // docker id (cAdvisor's id); "/" for the machine
	Component string // the dirac_component label
	AppID     string // MARATHON_APP_ID of the container's environment
	TaskID    string // MESOS_TASK_ID
	Time      time.Time

	CPUTotal, CPUUser, CPUSystem uint64   // cumulative ns
	PerCPU                       []uint64 // cumulative ns per CPU
	LoadAverage                  float64  // cAdvisor's (0 without a load reader)
	HasCPU                       bool

	Memory map[string]float64 // gauges: usage, rss, cache, working_set, …

	Network []Interface // per interface; the aggregate is their sum
	Tasks   map[string]float64
	Disks   []Filesystem // machine only (cAdvisor)
}

// Interface is one network interface's cumulative counters.
type Interface struct {
	Name     string
	Counters map[string]uint64 // rx_bytes, rx_packets, rx_errors, rx_dropped, tx_…
}

// Filesystem is one of the machine's filesystems (cAdvisor).
type Filesystem struct {
	Device string
	Fields map[string]any
}

// NetworkCounters are the interface counters the seed wrote.
var NetworkCounters = []string{"rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes", "tx_packets", "tx_errors", "tx_dropped"}

// rate is the per-second change of a cumulative counter between two
// samples; false when it cannot be known (a reset, no time between).
func rate(prev, cur uint64, dt time.Duration) (float64, bool) {
	if dt <= 0 || cur < prev {
		return 0, false
	}
	return float64(cur-prev) / dt.Seconds(), true
}
