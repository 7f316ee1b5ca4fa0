// Package policy owns the host policy, <root>/etc/upkeep/policy.toml: which paths a service's
// config overlay may create, whether a service from an image may run as root, which keys sign
// images, and which groups may use the control socket. It parses and judges; it never writes.
package policy
