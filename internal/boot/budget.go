package boot

import (
	"time"

	"upkeep/internal/spec"
)

// StopMargin is added to the longest chain of stop timeouts: the kill
// after a timeout, the reaping and the daemon's own exit.
const StopMargin = 5 * time.Second

// LongestChain is how long stopping every service may take at most: the
// daemon stops dependents first and independent services in parallel, so
// the bound is the heaviest dependency chain, each service weighing its
// own stop timeout. Unknown dependencies weigh nothing; a cycle (which
// validation refuses) is cut where it closes.
func LongestChain(svcs map[string]*spec.Service) time.Duration {
	memo := map[string]time.Duration{}
	visiting := map[string]bool{}
	var chain func(string) time.Duration
	chain = func(n string) time.Duration {
		s, ok := svcs[n]
		if !ok || visiting[n] {
			return 0
		}
		if d, ok := memo[n]; ok {
			return d
		}
		visiting[n] = true
		var most time.Duration
		for _, dep := range s.DependsOn {
			most = max(most, chain(dep))
		}
		visiting[n] = false
		memo[n] = s.Stop.Timeout.D() + most
		return memo[n]
	}
	var most time.Duration
	for n := range svcs {
		most = max(most, chain(n))
	}
	return most
}
