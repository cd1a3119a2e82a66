// Package deploy puts rendered app definitions on Marathon: create or
// update each app, wait until its deployment has really succeeded (the new
// version runs and every instance is healthy), roll it back when it has not
// within a deadline, and print a plan instead when asked for a dry run.
//
// One job a file: plan.go compares the rendered apps with what Marathon
// runs; apply.go makes the changes (locks, rollback); health.go waits for
// health and settles; scale.go and softupdate.go are the other two
// changes; options.go parses the settings. Marathon is reached through
// marathon/client (requests, errors, retries), never the other way round.
package deploy
