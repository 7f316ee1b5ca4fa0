package shim

import (
	"errors"
	"syscall"
	"unsafe"
)

// What golang.org/x/sys/unix would give, written out so that this package
// depends on syscall alone (see the package comment). The numbers are
// the kernel's ABI: <linux/prctl.h>, <linux/capability.h> and
// <asm-generic/resource.h>.
const (
	prSetKeepcaps          = 8          // PR_SET_KEEPCAPS (syscall.PR_SET_KEEPCAPS)
	prCapbsetDrop          = 24         // PR_CAPBSET_DROP (syscall.PR_CAPBSET_DROP)
	prSetNoNewPrivs        = 38         // PR_SET_NO_NEW_PRIVS
	prCapAmbient           = 47         // PR_CAP_AMBIENT
	prCapAmbientRaise      = 2          // PR_CAP_AMBIENT_RAISE
	prCapAmbientClearAll   = 4          // PR_CAP_AMBIENT_CLEAR_ALL
	linuxCapabilityVersion = 0x20080522 // _LINUX_CAPABILITY_VERSION_3: two capData
	rlimitNproc            = 6          // RLIMIT_NPROC, which syscall lacks
)

// prctl is prctl(2) with the arguments the shim uses; RawSyscall since
// none of these calls blocks.
func prctl(option, arg2, arg3 uintptr) error {
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, option, arg2, arg3, 0, 0, 0); e != 0 {
		return e
	}
	return nil
}

// capHeader and capData are struct __user_cap_header_struct and
// __user_cap_data_struct (unix.CapUserHeader, unix.CapUserData).
type capHeader struct {
	version uint32
	pid     int32
}

type capData struct {
	effective, permitted, inheritable uint32
}

func capget(h *capHeader, d *[2]capData) error {
	if _, _, e := syscall.RawSyscall(syscall.SYS_CAPGET, uintptr(unsafe.Pointer(h)), uintptr(unsafe.Pointer(&d[0])), 0); e != 0 {
		return e
	}
	return nil
}

func capset(h *capHeader, d *[2]capData) error {
	if _, _, e := syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(h)), uintptr(unsafe.Pointer(&d[0])), 0); e != 0 {
		return e
	}
	return nil
}

// lastCap is the highest capability the running kernel knows.
func lastCap() (uintptr, error) {
	b, err := readFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, wrap("capabilities", err)
	}
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	n, ok := parseUint(string(b))
	if !ok || n > 63 {
		return 0, wrap("capabilities", errors.New("cap_last_cap: bad number "+quote(string(b))))
	}
	return uintptr(n), nil
}

// dropBounding removes from the bounding set every capability not kept.
func dropBounding(keep []uintptr) error {
	last, err := lastCap()
	if err != nil {
		return err
	}
	for _, c := range keep {
		if c > last {
			return errors.New("capability " + itoa(uint64(c)) + ": not known to this kernel (last is " + itoa(uint64(last)) + ")")
		}
	}
	for c := uintptr(0); c <= last; c++ {
		if has(keep, c) {
			continue
		}
		if err := prctl(prCapbsetDrop, c, 0); err != nil {
			return wrap("drop capability "+itoa(uint64(c))+" from the bounding set", err)
		}
	}
	return nil
}

func has(set []uintptr, c uintptr) bool {
	for _, x := range set {
		if x == c {
			return true
		}
	}
	return false
}

// setAmbient leaves a process that is not root with exactly caps as its
// permitted, effective, inheritable and ambient sets (the ambient set is
// what survives the exec of an ordinary file). For root it only trims the
// inheritable set to the bounding set kept: the bounding set does not
// reach into inheritable capabilities the daemon already had.
func setAmbient(caps []uintptr, root bool, bounding []uintptr) error {
	hdr := capHeader{version: linuxCapabilityVersion}
	var data [2]capData
	if err := capget(&hdr, &data); err != nil {
		return wrap("capget", err)
	}
	if root {
		var keep [2]uint32
		for _, c := range bounding {
			keep[c/32] |= 1 << (c % 32)
		}
		for i := range data {
			data[i].inheritable &= keep[i]
		}
		if err := capset(&hdr, &data); err != nil {
			return wrap("capset", err)
		}
		return nil
	}
	if err := prctl(prCapAmbient, prCapAmbientClearAll, 0); err != nil {
		return wrap("clear ambient capabilities", err)
	}
	if len(caps) == 0 {
		return nil
	}
	data = [2]capData{}
	for _, c := range caps {
		data[c/32].effective |= 1 << (c % 32)
		data[c/32].permitted |= 1 << (c % 32)
		data[c/32].inheritable |= 1 << (c % 32)
	}
	if err := capset(&hdr, &data); err != nil {
		return wrap("capset "+capList(caps), err)
	}
	for _, c := range caps {
		if err := prctl(prCapAmbient, prCapAmbientRaise, c); err != nil {
			return wrap("raise ambient capability "+itoa(uint64(c)), err)
		}
	}
	return nil
}

func capList(caps []uintptr) string {
	var b []byte
	for i, c := range caps {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendUint(b, uint64(c))
	}
	return string(b)
}
