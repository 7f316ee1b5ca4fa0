package shim

import "errors"

// Arg is the shim's argv[1], followed by the program's path and its
// own argv, untouched, so nothing in them can be mistaken for a setting.
// Env carries the plan; the shim removes it before exec.
const (
	Arg = "__exec"
	Env = "UPKEEP_EXEC_PRIVS"
)

// Failed is the shim's exit status when it could not apply a setting or
// exec the program: the shell's "command not found or not runnable",
// which the supervisor sees as a failed start.
const Failed = 127

// Plan is what the shim applies, in the order it applies it. The daemon
// (upkeep/internal/proc) resolves all of it, so the shim decides nothing.
type Plan struct {
	Name         string // for messages
	Dir          string // entered as the service's user, as fork+exec does
	Umask        *uint32
	Limits       []Limit
	DropBounding bool      // cut the bounding set down to Bounding
	Bounding     []uintptr // CAP_* numbers kept in the bounding set
	Cred         *Cred     // the user switch, as fork+exec would have made it
	Ambient      []uintptr // raised after the user switch
	NNP          bool      // PR_SET_NO_NEW_PRIVS, last
}

// Limit is one resource limit: a syscall.RLIMIT_* resource, with
// RLIM_INFINITY as ^uint64(0).
type Limit struct {
	Resource int
	Soft     uint64
	Hard     uint64
}

// Cred is a uid, a gid and the supplementary groups.
type Cred struct {
	Uid, Gid uint32
	Groups   []uint32
}

// The plan travels in one environment variable as fields separated by
// ';', each "key=value" (or just "key" for a flag):
//
//	name=/bin/sleep;dir=/srv;umask=23;limit=7,512,1000;bounding=10;cred=65534,65534,4;ambient=10;nnp
//
// Numbers are decimal and lists comma-separated. cred is uid,gid and then
// the groups. "bounding" present, even empty, means DropBounding; "cred"
// present means a user switch. In name and dir '%' and ';' are written
// as %25 and %3B. The format is read only by the binary that wrote it
// (the daemon execs itself through /proc/self/exe), so it has no version.

// Encode returns p in the environment variable's format.
func (p *Plan) Encode() string {
	var b []byte
	field := func(k string) {
		if len(b) > 0 {
			b = append(b, ';')
		}
		b = append(b, k...)
	}
	list := func(k string, v []uintptr) {
		field(k + "=")
		for i, c := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendUint(b, uint64(c))
		}
	}
	field("name=")
	b = appendEscaped(b, p.Name)
	if p.Dir != "" {
		field("dir=")
		b = appendEscaped(b, p.Dir)
	}
	if p.Umask != nil {
		field("umask=")
		b = appendUint(b, uint64(*p.Umask))
	}
	for _, l := range p.Limits {
		field("limit=")
		b = appendUint(b, uint64(l.Resource))
		b = append(b, ',')
		b = appendUint(b, l.Soft)
		b = append(b, ',')
		b = appendUint(b, l.Hard)
	}
	if p.DropBounding {
		list("bounding", p.Bounding)
	}
	if p.Cred != nil {
		field("cred=")
		b = appendUint(b, uint64(p.Cred.Uid))
		b = append(b, ',')
		b = appendUint(b, uint64(p.Cred.Gid))
		for _, g := range p.Cred.Groups {
			b = append(b, ',')
			b = appendUint(b, uint64(g))
		}
	}
	if len(p.Ambient) > 0 {
		list("ambient", p.Ambient)
	}
	if p.NNP {
		field("nnp")
	}
	return string(b)
}

// Decode reads what Encode wrote.
func Decode(s string) (*Plan, error) {
	p := &Plan{}
	for len(s) > 0 {
		var f string
		f, s = cut(s, ';')
		k, v := cut(f, '=')
		var err error
		switch k {
		case "name":
			p.Name, err = unescape(v)
		case "dir":
			p.Dir, err = unescape(v)
		case "umask":
			var n []uint64
			if n, err = numbers(v, 1, 1, 0o7777); err == nil {
				u := uint32(n[0])
				p.Umask = &u
			}
		case "limit":
			var n []uint64
			if n, err = numbers(v, 3, 3, ^uint64(0)); err == nil {
				if n[0] > 1<<16 {
					err = errors.New("resource out of range")
				}
				p.Limits = append(p.Limits, Limit{Resource: int(n[0]), Soft: n[1], Hard: n[2]})
			}
		case "bounding":
			p.DropBounding = true
			p.Bounding, err = caps(v)
		case "cred":
			var n []uint64
			if n, err = numbers(v, 2, -1, 1<<32-1); err == nil {
				c := &Cred{Uid: uint32(n[0]), Gid: uint32(n[1])}
				for _, g := range n[2:] {
					c.Groups = append(c.Groups, uint32(g))
				}
				p.Cred = c
			}
		case "ambient":
			p.Ambient, err = caps(v)
		case "nnp":
			p.NNP = true
		default:
			err = errors.New("unknown field")
		}
		if err != nil {
			return nil, errors.New("field " + quote(k) + ": " + err.Error())
		}
	}
	return p, nil
}

func caps(v string) ([]uintptr, error) {
	n, err := numbers(v, 0, -1, 1<<31-1)
	if err != nil || len(n) == 0 {
		return nil, err
	}
	c := make([]uintptr, len(n))
	for i, x := range n {
		c[i] = uintptr(x)
	}
	return c, nil
}

// numbers reads a comma-separated list of min to max (-1: any number of)
// decimal numbers, each at most limit.
func numbers(v string, min, max int, limit uint64) ([]uint64, error) {
	var out []uint64
	for len(v) > 0 {
		var f string
		f, v = cut(v, ',')
		n, ok := parseUint(f)
		if !ok || n > limit {
			return nil, errors.New("bad number " + quote(f))
		}
		out = append(out, n)
	}
	if len(out) < min || max >= 0 && len(out) > max {
		return nil, errors.New("wrong count of numbers")
	}
	return out, nil
}

// cut splits s at the first sep; rest is empty when there is none.
func cut(s string, sep byte) (before, rest string) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

func parseUint(s string) (uint64, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 || n > (^uint64(0)-uint64(d))/10 {
			return 0, false
		}
		n = n*10 + uint64(d)
	}
	return n, true
}

func appendUint(b []byte, n uint64) []byte {
	var d [20]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, d[i:]...)
}

func itoa(n uint64) string { return string(appendUint(nil, n)) }

const hex = "0123456789ABCDEF"

func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '%' || c == ';' {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return b
}

func unescape(s string) (string, error) {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("bad escape")
		}
		hi, lo := unhex(s[i+1]), unhex(s[i+2])
		if hi < 0 || lo < 0 {
			return "", errors.New("bad escape")
		}
		b = append(b, byte(hi<<4|lo))
		i += 2
	}
	return string(b), nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func quote(s string) string { return `"` + s + `"` }

// wrap joins a step and what went wrong in it, as fmt's "%s: %v".
func wrap(step string, err error) error {
	return errors.New(step + ": " + err.Error())
}
