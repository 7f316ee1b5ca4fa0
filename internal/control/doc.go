// Package control is the daemon's API: HTTP+JSON over a unix socket that
// only its owner may open, and the client the CLI uses. It translates
// requests to calls on a Backend and holds no state of its own.
package control
