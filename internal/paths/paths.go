package paths

import "path/filepath"

// Relative to the root, slash-separated: the forms callers join with a
// root, or open beneath one with openat (host's tree).
const (
	WWW        = "var/www"              // running services: <name> is a directory, or a symlink to a release
	Releases   = WWW + "/.releases"     // <name>/<version>/: unpacked images
	LogDir     = "var/log"              // <name>.log, <name>.error.log, upkeep.log; declared files in subdirectories
	DB         = "var/db"               // <name>/: a service's data, never removed without --purge
	RunDir     = "run/upkeep"           // the control socket, pid files, the daemon's lock
	StateDir   = "var/lib/upkeep"       // upkeep's own records
	OverlayDir = StateDir + "/overlay"  // <name>.json: what the overlay placed
	HistoryDir = StateDir + "/releases" // <name>.json: the order releases were deployed in
	LockDir    = StateDir + "/lock"     // flock(2) files

	ConfigFile   = "etc/upkeep/upkeep.toml" // the host-wide config
	PolicyFile   = "etc/upkeep/policy.toml" // what overlays, users and images may do
	LogrotateDir = "etc/logrotate.d"        // where logrotate reads per-package stanzas

	SocketRel    = RunDir + "/upkeep.sock" // the control socket (mode 0666; peers checked, docs/policy.md)
	DaemonLogRel = LogDir + "/upkeep.log"  // the daemon's own event log
	HTTPTokenRel = RunDir + "/http.token"  // the dashboard's token for actions (mode 0600, one per daemon run)
)

// LogBase and ErrorLogBase are the names, in LogDir, of a service's
// captured stdout and stderr.
func LogBase(name string) string      { return name + ".log" }
func ErrorLogBase(name string) string { return name + ".error.log" }

// Relative forms of a service's paths.
func LogRel(name string) string              { return LogDir + "/" + LogBase(name) }
func ErrorLogRel(name string) string         { return LogDir + "/" + ErrorLogBase(name) }
func ServiceRel(name string) string          { return WWW + "/" + name }
func ReleasesRel(name string) string         { return Releases + "/" + name }
func ReleaseRel(name, version string) string { return WWW + "/" + ReleaseLink(name, version) }
func DBRel(name string) string               { return DB + "/" + name }
func PidFileRel(name string) string          { return RunDir + "/" + name + ".pid" }

// ReleaseLink is what var/www/<name> holds when it is a release: the
// symlink's target, relative to WWW, so that the tree can be moved (or
// seen from inside a chroot) whole.
func ReleaseLink(name, version string) string { return ".releases/" + name + "/" + version }

// StateRecordRel is the daemon's record of a running service (pid, start
// time, process group), beside its pid file, so that a daemon that died
// can find what it left running.
func StateRecordRel(name string) string { return RunDir + "/" + name + ".state" }

// The same, as paths on the host at root.
func Log(root, name string) string         { return filepath.Join(root, LogRel(name)) }
func ErrorLog(root, name string) string    { return filepath.Join(root, ErrorLogRel(name)) }
func Service(root, name string) string     { return filepath.Join(root, ServiceRel(name)) }
func PidFile(root, name string) string     { return filepath.Join(root, PidFileRel(name)) }
func StateRecord(root, name string) string { return filepath.Join(root, StateRecordRel(name)) }
func Socket(root string) string            { return filepath.Join(root, SocketRel) }
func DaemonLog(root string) string         { return filepath.Join(root, DaemonLogRel) }
