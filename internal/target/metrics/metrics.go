// Package metrics is metrics:report.
package metrics

import (
	"context"
	"os"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/mesos-slave/metrics/report"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
)

// Report writes dist/metrics/report.png and report.html: CPU and memory per DIRAC component over the last hour (--since 6h for another period), from the InfluxDB that INFLUXDB_* (or the JSON file LHCBDIRAC_METRICS_CONFIG) names.
func Report(ctx context.Context) error {
	return metricsreport.Main(ctx, settings.Load().Env, os.Stdout)
}
