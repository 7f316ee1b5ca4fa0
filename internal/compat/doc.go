// Package compat translates between service.toml and other supervisors' formats: it imports monit, upstart,
// supervisord, Procfile and logrotate files into spec.Service drafts, and exports services to systemd, Kubernetes
// and Nomad. It reports every directive it cannot translate; it never starts, stops or watches anything.
package compat
