package spec

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Privileges are what a service's processes may do, beyond its user:
// capabilities, no_new_privileges, umask, supplementary groups and
// resource limits. The process layer (proc) applies them; what root or
// not root changes is said there and in docs/service.toml.md.
type Privileges struct {
	// Capabilities names the capabilities kept, as CAP_NET_BIND_SERVICE
	// (validate makes every name canonical). nil: not set (none for a
	// service that is not root, root's full set for root); an empty,
	// non-nil list: none, root included.
	Capabilities []string `toml:"capabilities"`
	// NoNewPrivileges: nil means true for a service that is not root,
	// false for root.
	NoNewPrivileges *bool `toml:"no_new_privileges,omitempty"`
	// Umask is an octal string ("0027"); Defaults sets "0022".
	Umask string `toml:"umask,omitempty"`
	// Groups are supplementary groups, added to the user's own.
	Groups []string `toml:"groups,omitempty"`
	Limits Limits   `toml:"limits,omitempty"`
}

// Limits are the [limits] table: resource limits set before exec. A nil
// limit is inherited from the daemon (see docs/service.toml.md).
type Limits struct {
	Nofile *Limit `toml:"nofile,omitempty"`
	Nproc  *Limit `toml:"nproc,omitempty"`
	Core   *Limit `toml:"core,omitempty"`
}

// Infinity is RLIM_INFINITY, written "infinity".
const Infinity = math.MaxUint64

// Limit is a soft and a hard limit: an integer or "infinity" sets both,
// "soft:hard" each.
type Limit struct {
	Soft, Hard uint64
	err        error // reported by validate, with the key's position
}

// UnmarshalTOML keeps a bad value's error for validate, which knows
// where the key is; the decoder's own error would have no position.
func (l *Limit) UnmarshalTOML(v any) error {
	*l = Limit{}
	switch x := v.(type) {
	case int64:
		if x < 0 {
			l.err = fmt.Errorf("%d is negative", x)
			return nil
		}
		l.Soft, l.Hard = uint64(x), uint64(x)
	case string:
		soft, hard, pair := strings.Cut(x, ":")
		var err error
		if l.Soft, err = limitValue(soft); err == nil {
			l.Hard = l.Soft
			if pair {
				l.Hard, err = limitValue(hard)
			}
		}
		if err != nil {
			l.err = fmt.Errorf("%q: %v", x, err)
		} else if l.Soft > l.Hard {
			l.err = fmt.Errorf("%q: the soft limit is above the hard one", x)
		}
	default:
		l.err = fmt.Errorf("%v is not an integer, \"infinity\" or \"soft:hard\"", v)
	}
	return nil
}

func limitValue(s string) (uint64, error) {
	if strings.EqualFold(s, "infinity") || strings.EqualFold(s, "unlimited") {
		return Infinity, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == Infinity {
		return 0, fmt.Errorf("want an integer, \"infinity\" or \"soft:hard\"")
	}
	return n, nil
}

func (l Limit) MarshalText() ([]byte, error) {
	f := func(n uint64) string {
		if n == Infinity {
			return "infinity"
		}
		return strconv.FormatUint(n, 10)
	}
	if l.Soft == l.Hard {
		return []byte(f(l.Soft)), nil
	}
	return []byte(f(l.Soft) + ":" + f(l.Hard)), nil
}

// capabilityNames are the kernel's capabilities by number (linux
// capability.h, up to CAP_CHECKPOINT_RESTORE, Linux 5.9).
var capabilityNames = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
	"IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
	"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// Capability returns the number of a capability named with or without
// CAP_, in any case.
func Capability(name string) (uintptr, bool) {
	n := strings.ToUpper(strings.TrimSpace(name))
	n = strings.TrimPrefix(n, "CAP_")
	for i, c := range capabilityNames {
		if c == n {
			return uintptr(i), true
		}
	}
	return 0, false
}

// CapabilityNumbers returns the capabilities kept as numbers, nil when
// capabilities is not set.
func (p *Privileges) CapabilityNumbers() []uintptr {
	if p.Capabilities == nil {
		return nil
	}
	out := make([]uintptr, 0, len(p.Capabilities))
	for _, c := range p.Capabilities {
		if n, ok := Capability(c); ok {
			out = append(out, n)
		}
	}
	return out
}

// UmaskValue is the umask as a number (the default, 0022, when unset).
func (p *Privileges) UmaskValue() uint32 {
	n, err := parseUmask(p.Umask)
	if err != nil {
		return 0o022
	}
	return n
}

func parseUmask(s string) (uint32, error) {
	if s == "" {
		return 0o022, nil
	}
	if len(s) > 4 || strings.Trim(s, "01234567") != "" {
		return 0, fmt.Errorf("%q is not an octal umask such as \"0027\"", s)
	}
	n, _ := strconv.ParseUint(s, 8, 32)
	if n > 0o777 {
		return 0, fmt.Errorf("%q is above 0777", s)
	}
	return uint32(n), nil
}

// check validates the privileges and makes capability names canonical.
func (p *Privileges) check(add func(key, format string, args ...any)) {
	for i, c := range p.Capabilities {
		n, ok := Capability(c)
		if !ok {
			add("capabilities", "unknown capability %q", c)
			continue
		}
		p.Capabilities[i] = "CAP_" + capabilityNames[n]
	}
	if _, err := parseUmask(p.Umask); err != nil {
		add("umask", "%v", err)
	}
	for _, g := range p.Groups {
		if g == "" {
			add("groups", "an empty group name")
		} else if err := checkUserName(g); err != nil {
			add("groups", "%v", err)
		}
	}
	for key, l := range map[string]*Limit{"nofile": p.Limits.Nofile, "nproc": p.Limits.Nproc, "core": p.Limits.Core} {
		if l != nil && l.err != nil {
			add("limits."+key, "%v", l.err)
		}
	}
}
