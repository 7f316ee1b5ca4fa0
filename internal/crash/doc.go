// Package crash is a test hook: UPKEEP_CRASH_AT=<step> makes the process
// SIGKILL itself at the named step, so tests can kill a real deploy, import,
// rotation or reload exactly there. It owns nothing else, and must never be
// the way anything but a test ends a process.
package crash
