package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"aead.dev/minisign"
	"github.com/BurntSushi/toml"
	"golang.org/x/crypto/bcrypt"

	"upkeep/internal/paths"
	"upkeep/internal/spec"
)

// File is the policy's place beneath the root.
const File = paths.PolicyFile

// Policy is the host policy. The zero value is not useful: use Default,
// Load or Parse.
type Policy struct {
	Overlay Overlay `toml:"overlay"`
	Images  Images  `toml:"images"`
	Control Control `toml:"control"`
	HTTP    HTTP    `toml:"http"`

	// Source is where the policy came from, for messages: File, also when
	// the file is missing and these are its defaults.
	Source string `toml:"-"`
	keys   []minisign.PublicKey
}

// Overlay says what a service's config/ may lay onto the root.
type Overlay struct {
	// Allow lists the path rules an overlay may create files and
	// directories beneath; NAME stands for the service's name. Present in
	// the file, it replaces the defaults.
	Allow []string `toml:"allow"`
	// Deny adds rules to Denied; they win over Allow.
	Deny []string `toml:"deny"`
}

// Images says which images may be deployed.
type Images struct {
	// RequireSignature refuses an image that was not verified against one
	// of Keys when it was added.
	RequireSignature bool `toml:"require_signature"`
	// Keys are minisign public keys (the base64 line of minisign.pub).
	Keys []string `toml:"keys"`
	// AllowRoot lets any service from an image run as root.
	AllowRoot bool `toml:"allow_root"`
	// AllowRootServices lets these services run as root.
	AllowRootServices []string `toml:"allow_root_services"`
}

// Control names the groups whose members may use the control socket;
// the control package enforces them.
type Control struct {
	Group     string `toml:"group"`      // members may control the daemon
	ReadGroup string `toml:"read_group"` // members may read status, events and logs only
}

// HTTP is the dashboard's basic auth (upkeep daemon --http): a user and
// a bcrypt hash of the password, as htpasswd -B makes one.
type HTTP struct {
	User           string `toml:"user"`
	PasswordBcrypt string `toml:"password_bcrypt"`
}

// DefaultAllow is where an overlay may lay files when the policy does not
// say: the service's own places.
var DefaultAllow = []string{
	"etc/NAME/",
	"etc/nginx/sites-available/",
	"etc/nginx/sites-enabled/NAME",
	"etc/nginx/sites-enabled/NAME.conf",
	"etc/nginx/conf.d/NAME.conf",
	"etc/logrotate.d/NAME",
}

// Denied are the rules no policy can lift: what would give a service's
// files root on the host (sudo, accounts, ssh, PAM, the dynamic linker,
// cron, init, login shells, root's home, the system's programs and
// libraries, the kernel's file systems) or upkeep's own runtime state.
var Denied = []string{
	"etc/sudoers*", "etc/passwd", "etc/shadow", "etc/group", "etc/gshadow",
	"etc/ssh/", "etc/pam.d/", "etc/ld.so.*", "etc/cron*", "etc/systemd/",
	"etc/init.d/", "etc/profile*", "root/", "home/*/.ssh/", "usr/", "bin/",
	"sbin/", "lib*/", "boot/", "dev/", "proc/", "sys/", paths.RunDir + "/",
	// Beyond the list of issue 11, the same kind: other ways to have root
	// run something or to let someone log in.
	"etc/anacrontab", "var/spool/cron/", "etc/sudo.conf", "etc/doas.conf",
	"etc/security/", "etc/environment", "etc/rc.local", "etc/modprobe.d/",
	"etc/udev/", "etc/apt/", "etc/polkit-1/", "etc/upkeep/", paths.StateDir + "/",
}

// Default is the policy of a host without a policy file.
func Default() *Policy {
	return &Policy{
		Overlay: Overlay{Allow: append([]string(nil), DefaultAllow...)},
		Control: Control{Group: "upkeep"},
		Source:  File,
	}
}

// Load reads <root>/etc/upkeep/policy.toml; a missing file is Default.
// It is read the way programs read /etc, through symlinks: only writes
// beneath the root refuse them.
func Load(root string) (*Policy, error) {
	file := filepath.Join(root, filepath.FromSlash(File))
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return Default(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	p, err := Parse(file, data)
	if err != nil {
		return nil, err
	}
	p.Source = File
	return p, nil
}

// Parse reads a policy file's content; file names it in errors, which
// carry file:line:col.
func Parse(file string, data []byte) (*Policy, error) {
	p, err := parse(file, data)
	if err != nil {
		// One line, whatever the input's strings hold.
		return nil, errors.New(strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(err.Error()))
	}
	return p, nil
}

func parse(file string, data []byte) (*Policy, error) {
	p := Default()
	p.Overlay.Allow = nil
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(p)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d:%d: %s", file, pe.Position.Line, max(pe.Position.Col, 1), strings.TrimPrefix(pe.Message, "toml: "))
		}
		// A type mismatch: BurntSushi/toml says which key, not where.
		return nil, fmt.Errorf("%s: %s", file, strings.TrimPrefix(err.Error(), "toml: "))
	}
	text := string(data)
	at := func(key string) string {
		line, col := spec.Locate(text, key)
		return fmt.Sprintf("%s:%d:%d", file, line, col)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("%s: %s: unknown key", at(und[0].String()), und[0])
	}
	if !md.IsDefined("overlay", "allow") {
		p.Overlay.Allow = append([]string(nil), DefaultAllow...)
	}
	var problems []string
	bad := func(key, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s: %s: %s", at(key), key, fmt.Sprintf(format, args...)))
	}
	for _, r := range p.Overlay.Allow {
		if err := checkRule(r); err != nil {
			bad("overlay.allow", "%q: %v", r, err)
			continue
		}
		// An allow rule wholly inside an always-refused path would be a
		// promise the matcher breaks: say so where it is written.
		if d := matchAny(Denied, normRule(r), "x", true); d != "" {
			bad("overlay.allow", "%q is always refused (deny rule %q); the policy can only add to the deny rules", r, d)
		}
	}
	for _, r := range p.Overlay.Deny {
		if err := checkRule(r); err != nil {
			bad("overlay.deny", "%q: %v", r, err)
		}
	}
	for _, k := range p.Images.Keys {
		var pk minisign.PublicKey
		if err := pk.UnmarshalText([]byte(strings.TrimSpace(k))); err != nil {
			bad("images.keys", "%q is not a minisign public key (the base64 line of minisign.pub): %v", short(k), err)
			continue
		}
		p.keys = append(p.keys, pk)
	}
	if p.Images.RequireSignature && len(p.Images.Keys) == 0 {
		bad("images.require_signature", "true, but images.keys lists no key to check signatures with")
	}
	for _, n := range p.Images.AllowRootServices {
		if n == "" || strings.ContainsAny(n, "/ \t") {
			bad("images.allow_root_services", "%q is not a service name", n)
		}
	}
	for key, g := range map[string]string{"control.group": p.Control.Group, "control.read_group": p.Control.ReadGroup} {
		if strings.ContainsAny(g, ": \t\n/") {
			bad(key, "%q is not a group name", g)
		}
	}
	if (p.HTTP.User == "") != (p.HTTP.PasswordBcrypt == "") {
		bad("http", "user and password_bcrypt go together")
	}
	if strings.ContainsAny(p.HTTP.User, ": \t\n") {
		bad("http.user", "%q is not a user name for basic auth", p.HTTP.User)
	}
	if h := p.HTTP.PasswordBcrypt; h != "" {
		if _, err := bcrypt.Cost([]byte(h)); err != nil {
			bad("http.password_bcrypt", "not a bcrypt hash (make one with htpasswd -nB USER): %v", err)
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return p, nil
}

// RunsAsRoot reports whether a service with this user = would run as root:
// root by name or uid, or no user at all (it then runs as the daemon,
// which is root).
func RunsAsRoot(user string) bool {
	u := strings.TrimSpace(user)
	return u == "" || u == "root" || strings.TrimLeft(u, "0") == "" && u != ""
}

// RootAllowed reports whether service name, from an image, may run as
// root, and if not, the rule that says so.
func (p *Policy) RootAllowed(name string) bool {
	if p.Images.AllowRoot {
		return true
	}
	for _, n := range p.Images.AllowRootServices {
		if n == name {
			return true
		}
	}
	return false
}

func short(s string) string {
	if len(s) > 20 {
		return s[:20] + "..."
	}
	return s
}
