// Package health runs a service's checks on their schedules and judges the
// results the way monit does (cycles within a window, recovery, grace). It
// never starts or stops the service's processes: the supervisor acts on its events.
package health
