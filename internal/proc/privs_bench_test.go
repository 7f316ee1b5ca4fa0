package proc

import (
	"os"
	"syscall"
	"testing"
)

// BenchmarkSpawn is the cost of one start of a process that exits at once
// (fork, exec, exit, reap): plainly, and through the shim, which adds an
// exec of this binary and a Go runtime start. bench/privs.sh measures the
// same with the upkeep binary, as a restart after a crash.
func BenchmarkSpawn(b *testing.B) {
	yes := true
	um := uint32(daemonUmask())
	cases := []struct {
		name  string
		cred  func() *syscall.Credential
		privs *Privileges
	}{
		{"plain", func() *syscall.Credential { return nil }, &Privileges{Umask: &um}},
		{"shim-root-nnp", func() *syscall.Credential { return nil }, &Privileges{Umask: &um, NoNewPrivileges: &yes}},
		{"shim-nobody", func() *syscall.Credential {
			c, err := Credential("nobody", "", nil)
			if err != nil {
				b.Fatal(err)
			}
			return c
		}, &Privileges{Umask: &um}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			needRoot(b)
			cred := c.cred()
			if (shimPlan("true", cred, c.privs) != nil) != (c.name != "plain") {
				b.Fatal("the case does not take the path it is named for")
			}
			null, _ := os.Open(os.DevNull)
			defer null.Close()
			fds := []uintptr{null.Fd(), null.Fd(), null.Fd()}
			for b.Loop() {
				p, err := NewReaper().Spawn(Attr{Argv: []string{"/bin/true"}, Dir: "/", Files: fds, Cred: cred, Privs: c.privs, CgroupFD: -1})
				if err != nil {
					b.Fatal(err)
				}
				if ex := p.Exit(); !ex.Success() {
					b.Fatal(ex)
				}
			}
		})
	}
}

// BenchmarkStart is BenchmarkSpawn through Start, the way the supervisor
// starts a service: the user and groups looked up (os/user reads
// /etc/passwd and /etc/group) and /dev/null opened for each start.
func BenchmarkStart(b *testing.B) {
	um := uint32(daemonUmask())
	for _, c := range []struct {
		name string
		as   Identity
	}{
		{"plain", Identity{Privs: &Privileges{Umask: &um}}},
		{"shim-nobody", Identity{User: "nobody", Privs: &Privileges{Umask: &um}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			needRoot(b)
			r := NewReaper()
			for b.Loop() {
				p, err := r.Start(Cmd{Argv: []string{"/bin/true"}, Dir: "/", As: c.as})
				if err != nil {
					b.Fatal(err)
				}
				if ex := p.Exit(); !ex.Success() {
					b.Fatal(ex)
				}
			}
		})
	}
}
