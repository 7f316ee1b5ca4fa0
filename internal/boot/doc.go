// Package boot owns what makes the daemon itself a good citizen of the
// host's init: it detects the init a root runs, renders the file that
// starts `upkeep daemon` at boot (a systemd unit, an LSB sysvinit script,
// an OpenRC script), and speaks sd_notify to systemd. It writes nothing:
// internal/host installs the files beneath the root.
package boot
