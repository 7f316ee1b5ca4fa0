// Package metrics exposes the daemon's services to Prometheus at /metrics.
// It reads status snapshots at scrape time and observes check runs as they happen.
// It never changes anything: no command, no state, only numbers out.
package metrics
