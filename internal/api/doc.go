// Package api is the JSON the daemon and its clients exchange: a service's
// status and its states, events, history, and what a reload or a rotation
// did. The daemon (supervise) fills these types, control carries them, and
// the CLI, host, metrics and the dashboard read them. It holds no logic
// beyond naming the states; the state machine that moves between them is
// supervise's.
package api
