package supervise

// A service's states (api.State) and its snapshot (api.Status) are wire
// types, in package api; docs/states.md draws the diagram, and
// service.handle is the only place that moves between states.
