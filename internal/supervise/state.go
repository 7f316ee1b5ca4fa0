package supervise

// A service's states (api.State) and its snapshot (api.Status) are wire
// types, in package api; docs/states.md draws the diagram. service.handle
// is the only place that moves between states: requests, timers, exits and
// the health monitor's verdicts all reach it as events.
