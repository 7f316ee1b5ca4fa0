// Package spec owns the service definition: the service.toml format, its
// defaults, validation with file:line:col positions, and finding the services
// of a host. It does not start, stop or watch anything.
package spec
