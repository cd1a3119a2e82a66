package deploy

import (
	"io"
	"time"
)

// The environment variables the settings read into Options (with
// ParseOptions); errors name them so that the fix is plain.
const (
	ForceEnv        = "MARATHON_FORCE"
	TimeoutEnv      = "MARATHON_TIMEOUT"
	SettleEnv       = "MARATHON_SETTLE"
	MaxInstancesEnv = "MARATHON_MAX_INSTANCES"
)

// DefaultMaxInstances is Scale's bound when none is set: DIRAC services
// run a handful of instances each.
const DefaultMaxInstances = 100

// Options tune Apply, Scale and SoftUpdate.
type Options struct {
	// Force overrides a deployment already running on an app (?force=true).
	// Without it, a 409 waits for that deployment to finish, then retries.
	Force bool
	// Concurrency bounds the apps deployed at once (default 4).
	Concurrency int
	// Timeout is how long an app may take to run its new version with every
	// instance healthy before it is rolled back (default 10 min). It bounds
	// a deploy or scale of each app, every request included; a rollback
	// after it gets as long again.
	Timeout time.Duration
	// Settle is how long every instance of the new version must stay
	// healthy after its deployment finished (default 30 s, at most until
	// Timeout). Marathon ends a deployment once the tasks first pass their
	// health checks; a service that dies a few seconds later would
	// otherwise be reported deployed.
	Settle time.Duration
	// Poll is the polling interval (default 1 s).
	Poll time.Duration
	// Log receives one line per event; nil discards.
	Log io.Writer
	// MaxInstances bounds the instance count Scale accepts (default
	// DefaultMaxInstances, MARATHON_MAX_INSTANCES): a typo of a few zeros
	// must not reach Marathon, which would try to start them all.
	MaxInstances int
}

func (o *Options) defaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Settle <= 0 {
		o.Settle = 30 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.MaxInstances <= 0 {
		o.MaxInstances = DefaultMaxInstances
	}
}
