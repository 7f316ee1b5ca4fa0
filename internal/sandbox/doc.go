// Package sandbox runs one service in a throwaway copy of the host: new
// mount, PID, network, UTS and IPC namespaces, / an overlayfs with the root
// as its read-only lower layer, `upkeep daemon` as PID 1. It owns the
// namespaces and the report of what the service touched; it never mounts in
// the host's mount namespace and never writes beneath the root.
package sandbox
