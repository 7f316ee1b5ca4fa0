// Package control is the daemon's API: HTTP+JSON over a unix socket, and
// the client the CLI uses. It decides per request who may do what (the
// peer's credentials against an Access; a service's own processes kept to
// their service) and bounds what any client can make the daemon hold. It
// translates requests to calls on a Backend and holds no state of its own.
package control
