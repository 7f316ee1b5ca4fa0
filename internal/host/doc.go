// Package host owns the host's layout and what is deployed on it: provisioning and doctor, images,
// releases (deploy, rollback, prune), the config overlay and removal, all beneath --root and --home.
// It never supervises: it talks to the daemon only through the control client.
package host
