package boot

import (
	"fmt"
	"os"
	"path/filepath"
)

// Init is the init system that starts the daemon at boot.
type Init string

const (
	Auto    Init = "auto"
	Systemd Init = "systemd"
	SysV    Init = "sysv"
	OpenRC  Init = "openrc"
	None    Init = "none"
)

// ParseInit reads the value of --boot.
func ParseInit(s string) (Init, error) {
	switch i := Init(s); i {
	case Auto, Systemd, SysV, OpenRC, None:
		return i, nil
	case "":
		return Auto, nil
	}
	return "", fmt.Errorf("--boot=%s: want auto, systemd, sysv, openrc or none", s)
}

// Detect says which init the host under root runs. A booted systemd
// leaves run/systemd/system (sd_booted(3)'s test); an image that is not
// booted is judged by the binaries it holds. Anything else is taken for
// sysvinit, whose scripts busybox and most other inits also run.
func Detect(root string) Init {
	exists := func(rel string) bool {
		_, err := os.Stat(filepath.Join(root, rel))
		return err == nil
	}
	switch {
	case exists("run/systemd/system"), exists("lib/systemd/systemd"), exists("usr/lib/systemd/systemd"):
		return Systemd
	case exists("sbin/openrc-run"), exists("usr/sbin/openrc-run"):
		return OpenRC
	}
	return SysV
}
