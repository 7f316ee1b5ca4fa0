package host

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"upkeep/internal/policy"
	"upkeep/internal/spec"
)

// The host policy (internal/policy) applied to what this package does:
// image add, deploy (and its dry run), rollback and overlay judge a
// service's config/ and its user before anything is written, and doctor
// reports what the policy would refuse of what is already there.

// PolicyError is everything the host policy refuses of one image or
// service: one line per path (or per rule broken), so an operator sees it
// all at once.
type PolicyError struct {
	What  string // "image www-evil 1.0", "overlay of www-evil"
	Lines []string
}

func (e *PolicyError) Error() string {
	return fmt.Sprintf("%s refused by the host policy (%s): %s; nothing was written\n%s",
		e.What, policy.File, plural(len(e.Lines), "problem", "problems"), strings.Join(e.Lines, "\n"))
}

// Policy reads the host policy once (the defaults when the file is absent).
func (h *Host) Policy() (*policy.Policy, error) {
	if h.pol != nil {
		return h.pol, nil
	}
	p, err := policy.Load(h.Root)
	if err != nil {
		return nil, err
	}
	h.pol = p
	return p, nil
}

// judgeConfig returns a line for each file or directory of cfg (a
// service's config/) that the policy refuses to lay for service name. A
// refused directory is named only when nothing beneath it is. dir is the
// service's release (or directory) on disk, "" for an image not unpacked.
func judgeConfig(pol *policy.Policy, name string, cfg configTree, dir string) ([]string, error) {
	refused := map[string]string{}
	err := cfg.walk(func(rel string, d fs.DirEntry) error {
		if r := pol.CheckPath(name, rel, d.IsDir()); r != nil {
			refused[r.Path] = r.Error()
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		target, err := linkTarget(cfg, rel)
		if err != nil {
			return err
		}
		r := pol.CheckLink(rel, target)
		if r == nil && dir != "" {
			r = escapes(pol, dir, rel, target)
		}
		if r != nil {
			r.Path = "config/" + r.Path
			refused[r.Path] = r.Error()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for p, line := range refused {
		beneath := false
		for q := range refused {
			if strings.HasPrefix(q, p+"/") {
				beneath = true
				break
			}
		}
		if !beneath {
			out = append(out, line)
		}
	}
	sort.Strings(out)
	return out, nil
}

func linkTarget(cfg configTree, rel string) (string, error) {
	switch c := cfg.(type) {
	case imageConfig:
		return c[rel].target, nil
	case diskConfig:
		return os.Readlink(c.path(rel))
	}
	return "", fmt.Errorf("config/%s: a symlink of unknown origin", rel)
}

// escapes follows a symlink of config/ on disk to its end (other symlinks
// of the release included) and refuses it if that is outside dir: the
// lexical check cannot see a chain through another symlink.
func escapes(pol *policy.Policy, dir, rel, target string) *policy.Refusal {
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil
	}
	end, err := filepath.EvalSymlinks(filepath.Join(dir, "config", filepath.FromSlash(rel)))
	if err != nil {
		return nil // dangling: it leads nowhere yet; doctor reports dangling links
	}
	if end == realDir || strings.HasPrefix(end, realDir+string(filepath.Separator)) {
		return nil
	}
	return &policy.Refusal{Path: rel, Why: fmt.Sprintf("a symlink to %q, which leads to %s, outside the service's release", target, end), Source: pol.Source}
}

// judgeUser returns the line refusing a service from an image that would
// run as root, or "".
func (h *Host) judgeUser(pol *policy.Policy, name string, svc *spec.Service) string {
	if svc == nil || !h.runsAsRoot(svc.User) || pol.RootAllowed(name) {
		return ""
	}
	how := fmt.Sprintf("user = %q", svc.User)
	switch {
	case strings.TrimSpace(svc.User) == "":
		how = "no user (it would run as the daemon, root)"
	case !policy.RunsAsRoot(svc.User):
		how += " (uid 0 in " + h.Path("etc/passwd") + ")"
	}
	return fmt.Sprintf("service.toml: %s: a service from an image may not run as root (set user, or allow it with [images] allow_root or allow_root_services in %s)", how, pol.Source)
}

// judgeSignature returns the line refusing a stored image under
// require_signature, or "".
func judgeSignature(pol *policy.Policy, img *Image) string {
	switch {
	case !pol.Images.RequireSignature:
		return ""
	case !img.Verified:
		return fmt.Sprintf("%s: not verified by a signature when it was added (images.require_signature = true in %s); add it again with its .minisig", img.File, pol.Source)
	case !pol.HasKey(img.KeyID):
		return fmt.Sprintf("%s: signed by key %s, which is no longer one of images.keys in %s", img.File, img.KeyID, pol.Source)
	}
	return ""
}

// checkImagePolicy judges a stored image before deploy (or its dry run)
// touches anything, against the policy as it is now: its signature
// record, its user and its config/ as recorded at image add (or read from
// the image, for a record from before). Deploy checks the image against
// its recorded sha256 as it unpacks, so the record speaks for the image.
func (h *Host) checkImagePolicy(img *Image, o DeployOptions) error {
	pol, err := h.Policy()
	if err != nil {
		return err
	}
	var lines []string
	if l := judgeSignature(pol, img); l != "" {
		lines = append(lines, l)
	}
	j := img.Judged
	if j == nil {
		// Stored before the policy: read the image itself.
		c, list, err := h.listImage(img, o)
		if err != nil {
			return err
		}
		j = judged(c, list)
	}
	if l := h.judgeUser(pol, img.Name, &spec.Service{User: j.User}); l != "" {
		lines = append(lines, l)
	}
	more, err := judgeConfig(pol, img.Name, j.config(), "")
	if err != nil {
		return err
	}
	if lines = append(lines, more...); len(lines) > 0 {
		return &PolicyError{What: "image " + img.Name + " " + img.Version, Lines: lines}
	}
	return nil
}

// checkReleasePolicy judges a release on disk (rollback, overlay): its
// config/, and its user unless it is a manual install kept as a release.
func (h *Host) checkReleasePolicy(name, version, dir string, svc *spec.Service) error {
	pol, err := h.Policy()
	if err != nil {
		return err
	}
	lines, err := judgeConfig(pol, name, diskConfig(filepath.Join(dir, "config")), dir)
	if err != nil {
		return err
	}
	what := "overlay of " + name
	if version != "" && !strings.HasPrefix(version, manualPrefix) {
		what = "release " + name + " " + version
		if l := h.judgeUser(pol, name, svc); l != "" {
			lines = append([]string{l}, lines...)
		}
	}
	if len(lines) > 0 {
		return &PolicyError{What: what, Lines: lines}
	}
	return nil
}

// manualPrefix begins the version of a manual install kept as a release.
const manualPrefix = "manual-"

// verifyAdd checks what image add was asked to check of src before it is
// read: its sha256 (--sha256) and its minisign signature (--sig, or
// SRC.minisig beside it), which require_signature makes mandatory. It
// returns the signing key's ID ("" when unsigned) and the sha256 of src.
func (h *Host) verifyAdd(src string, isDir bool, o AddOptions) (keyID, sum string, err error) {
	pol, err := h.Policy()
	if err != nil {
		return "", "", err
	}
	sigFile := o.Sig
	if sigFile == "" && !isDir {
		if _, err := os.Stat(src + ".minisig"); err == nil {
			sigFile = src + ".minisig"
		}
	}
	if isDir {
		switch {
		case o.SHA256 != "":
			return "", "", fmt.Errorf("image add %s: --sha256 checks a file, and this is a directory", src)
		case sigFile != "":
			return "", "", fmt.Errorf("image add %s: a signature covers a file, and this is a directory", src)
		case pol.Images.RequireSignature:
			return "", "", fmt.Errorf("image add %s: a directory cannot be signed, and images.require_signature = true in %s", src, pol.Source)
		}
		return "", "", nil
	}
	if sigFile == "" && pol.Images.RequireSignature {
		return "", "", fmt.Errorf("image add %s: no signature (%s.minisig, or --sig FILE), and images.require_signature = true in %s", src, filepath.Base(src), pol.Source)
	}
	if sigFile == "" && o.SHA256 == "" {
		return "", "", nil
	}
	f, err := os.Open(src)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	hash := sha256.New()
	r := io.TeeReader(f, hash)
	if sigFile != "" {
		sig, err := os.ReadFile(sigFile)
		if err != nil {
			return "", "", fmt.Errorf("image add %s: signature: %w", src, err)
		}
		if keyID, err = pol.Verify(r, sig); err != nil {
			return "", "", fmt.Errorf("image add %s: signature %s: %w", src, sigFile, err)
		}
	}
	if _, err := io.Copy(hash, f); err != nil { // what Verify left (an error)
		return "", "", err
	}
	sum = hex.EncodeToString(hash.Sum(nil))
	if o.SHA256 != "" && !strings.EqualFold(strings.TrimSpace(o.SHA256), sum) {
		return "", "", fmt.Errorf("image add %s: sha256 is %s, not %s as --sha256 says", src, sum, o.SHA256)
	}
	if keyID != "" {
		h.say("verified %s: signed by key %s", src, keyID)
	}
	return keyID, sum, nil
}

// checkAddPolicy judges an image being added: its user and its config/.
func (h *Host) checkAddPolicy(name, version string, c *content, list *listSink) error {
	pol, err := h.Policy()
	if err != nil {
		return err
	}
	var lines []string
	svc, _ := spec.Parse(h.Root, h.Path(serviceRel(name)), c.TOML)
	if l := h.judgeUser(pol, name, svc); l != "" {
		lines = append(lines, l)
	}
	more, err := judgeConfig(pol, name, list.config(c.Top), "")
	if err != nil {
		return err
	}
	if lines = append(lines, more...); len(lines) > 0 {
		return &PolicyError{What: "image " + name + " " + version, Lines: lines}
	}
	return nil
}

// checkPolicy is doctor's look at the services against the policy: a
// config/ that holds what the policy refuses, a service from an image that
// runs as root without leave.
func (h *Host) checkPolicy(names []string, add func(Finding)) {
	file := h.Path(policy.File)
	if _, err := os.Lstat(file); errors.Is(err, fs.ErrNotExist) {
		add(Finding{Path: file, What: "no host policy: the defaults apply", Fix: "write " + file + " (the defaults, commented: upkeep provision does)",
			fix: func() error {
				_, err := h.root.WriteFileSync(policy.File, strings.NewReader(policy.DefaultFile), 0o644)
				return err
			}})
	}
	_, err := h.Policy()
	if err != nil {
		add(Finding{Path: file, What: err.Error(), Fix: "correct " + file})
		return
	}
	for _, name := range names {
		dir := h.Path(serviceRel(name))
		cur := h.current(name)
		svc, _ := h.loadService(name)
		version := cur.Version
		if cur.Kind == "manual" {
			version = ""
		}
		err := h.checkReleasePolicy(name, version, dir, svc)
		var pe *PolicyError
		if errors.As(err, &pe) {
			for _, l := range pe.Lines {
				f := Finding{Path: filepath.Join(dir, "config"), What: l, Fix: "remove it from the service's config/, or change " + file}
				if strings.HasPrefix(l, spec.FileName+":") {
					f.Path, f.Fix = filepath.Join(dir, spec.FileName), "set user in the image's service.toml and deploy it, or allow it in "+file
				}
				add(f)
			}
		}
	}
}

// PolicyWarnings are what doctor says of the policy without counting it
// a problem: signatures not required, hand-written services that run as
// root (the daemon runs them: the operator wrote them).
func (h *Host) PolicyWarnings() ([]string, error) {
	pol, err := h.Policy()
	if err != nil {
		return nil, err
	}
	var out []string
	if !pol.Images.RequireSignature {
		out = append(out, fmt.Sprintf("images are not required to be signed (images.require_signature = false in %s)", h.Path(policy.File)))
	}
	names, err := h.serviceNames()
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		cur := h.current(name)
		if cur.Kind != "manual" && !strings.HasPrefix(cur.Version, manualPrefix) {
			continue
		}
		if svc, _ := h.loadService(name); svc != nil && h.runsAsRoot(svc.User) {
			out = append(out, fmt.Sprintf("%s runs as root (%s is not from an image, so the policy's runs-as-root rule does not hold it back; set user in its service.toml)", name, h.Path(serviceRel(name))))
		}
	}
	return out, nil
}

// isGzip reports whether the file at p begins as gzip does (image add
// stores such a file as it is).
func isGzip(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [2]byte
	n, _ := io.ReadFull(f, b[:])
	return n == 2 && b[0] == 0x1f && b[1] == 0x8b
}

// Judged is what image add recorded of an image for the policy.
type Judged struct {
	User   string        `json:"user"`
	Config []JudgedEntry `json:"config"` // config/ entries, a directory before what it holds
}

// JudgedEntry is one entry of an image's config/.
type JudgedEntry struct {
	Path   string `json:"path"` // config-relative
	Dir    bool   `json:"dir,omitempty"`
	Target string `json:"target,omitempty"` // a symlink's
}

func judged(c *content, list *listSink) *Judged {
	var meta struct {
		User string `toml:"user"`
	}
	_, _ = toml.Decode(string(c.TOML), &meta) // identify has parsed it already
	j := &Judged{User: meta.User, Config: []JudgedEntry{}}
	_ = list.config(c.Top).walk(func(rel string, d fs.DirEntry) error {
		e := JudgedEntry{Path: rel, Dir: d.IsDir()}
		if d.Type()&fs.ModeSymlink != 0 {
			e.Target = d.(memEntry).target
		}
		j.Config = append(j.Config, e)
		return nil
	})
	return j
}

func (j *Judged) config() imageConfig {
	c := imageConfig{}
	for _, e := range j.Config {
		m := memEntry{name: path.Base(e.Path), target: e.Target}
		switch {
		case e.Dir:
			m.mode = fs.ModeDir
		case e.Target != "":
			m.mode = fs.ModeSymlink
		}
		c[e.Path] = m
	}
	return c
}

// runsAsRoot is policy.RunsAsRoot, and also a user name that the root's
// etc/passwd gives uid 0 (toor): on a real host (--root /) that is the
// file the daemon resolves names with.
func (h *Host) runsAsRoot(user string) bool {
	if policy.RunsAsRoot(user) {
		return true
	}
	ids, err := spec.ReadIDs(h.Path("etc/passwd"))
	if err != nil {
		return false
	}
	uid, ok := ids[strings.TrimSpace(user)]
	return ok && uid == 0
}
