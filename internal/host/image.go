package host

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/klauspost/compress/gzip"

	"upkeep/internal/spec"
)

// Image is the record of a stored image: ~/image/<name>-<version>.json
// beside ~/image/<name>-<version>.tar.gz.
type Image struct {
	Name     string    `json:"name"`
	Version  string    `json:"version"`
	File     string    `json:"file"`   // the archive, in ~/image
	SHA256   string    `json:"sha256"` // of the archive
	Size     int64     `json:"size"`   // of the archive
	Unpacked int64     `json:"unpacked_bytes"`
	Files    int       `json:"files"`
	Source   string    `json:"source"`
	Added    time.Time `json:"added"`
	// Verified: a minisign signature by KeyID, one of the host policy's
	// keys, was checked when the image was added.
	Verified bool   `json:"verified"`
	KeyID    string `json:"key_id,omitempty"`
	// Judged is what the host policy judges of the image (its user and
	// config/), recorded at image add so deploy need not read the image
	// twice; nil in records written before the policy.
	Judged *Judged `json:"judged,omitempty"`
}

// AddOptions tune `upkeep image add`.
type AddOptions struct {
	Name, Version string // override what the image and its file name say
	Force         bool   // replace a stored image of the same name and version
	AllowSetuid   bool
	MaxSize       int64  // 0: the host config's image_max_size
	SHA256        string // the image file's expected sha256 (hex)
	Sig           string // its minisign signature; "": FILE.minisig when there is one
}

var versionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$`)

// CheckVersion says why v cannot be a version (a release directory's name).
func CheckVersion(v string) error {
	if !versionRE.MatchString(v) || strings.Contains(v, "..") {
		return fmt.Errorf("version %q must be 1-64 of A-Z a-z 0-9 . _ + ~ - starting with a letter or digit", v)
	}
	return nil
}

func (h *Host) imageDir() (string, error) {
	if h.Home == "" {
		return "", errors.New("no operator home (--home) for ~/image")
	}
	if _, err := h.home.MkdirAll(homeImage, 0o755); err != nil {
		return "", err
	}
	return h.home.abs(homeImage), nil
}

func (h *Host) limits(maxSize int64, allowSetuid bool) (Limits, error) {
	cfg, err := h.Config()
	if err != nil {
		return Limits{}, err
	}
	if maxSize <= 0 {
		maxSize = cfg.MaxSize
	}
	return Limits{MaxSize: maxSize, MaxFiles: cfg.ImageMaxFiles, AllowSetuid: allowSetuid}, nil
}

// AddImage checks the image at src (a .tar.gz, a .tar or a directory) and
// stores it in ~/image as <name>-<version>.tar.gz with its record. Nothing
// is stored unless every entry passes.
func (h *Host) AddImage(src string, o AddOptions) (*Image, error) {
	lim, err := h.limits(o.MaxSize, o.AllowSetuid)
	if err != nil {
		return nil, err
	}
	dir, err := h.imageDir()
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	keyID, srcSum, err := h.verifyAdd(src, fi.IsDir(), o)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, ".upkeep-add-*.tar.gz")
	if err != nil {
		return nil, err
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	if fi.IsDir() {
		var real string
		if real, err = filepath.EvalSymlinks(src); err == nil {
			err = packDir(real, tmp)
		}
	} else {
		err = copyCompressed(src, tmp)
	}
	if err != nil {
		return nil, fmt.Errorf("image add %s: %w", src, err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	sum := sha256.New()
	tee := io.TeeReader(tmp, sum)
	list := newListSink()
	c, err := readImage(tee, lim, list)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(sum, tmp); err != nil { // what follows the archive's end
		return nil, err
	}
	size, _ := tmp.Seek(0, io.SeekCurrent)
	name, version, err := h.identify(src, fi.IsDir(), c, o)
	if err != nil {
		return nil, err
	}
	if err := h.checkAddPolicy(name, version, c, list); err != nil {
		return nil, err
	}
	img := &Image{Name: name, Version: version, File: name + "-" + version + ".tar.gz", SHA256: hex.EncodeToString(sum.Sum(nil)),
		Size: size, Unpacked: c.Bytes, Files: c.Files, Source: src, Added: time.Now().UTC().Truncate(time.Second),
		Verified: keyID != "", KeyID: keyID, Judged: judged(c, list)}
	if srcSum != "" && isGzip(src) && srcSum != img.SHA256 {
		// A .tar.gz is stored as it is: what was verified is what is stored.
		return nil, fmt.Errorf("image add %s: it changed while it was read", src)
	}
	if old, err := h.readImage(name, version); err == nil {
		if old.SHA256 == img.SHA256 {
			h.say("%s %s is already stored (%s)", name, version, filepath.Join(dir, old.File))
			return old, nil
		}
		if !o.Force {
			return nil, fmt.Errorf("a different image of %s %s is stored (sha256 %.12s, this one %.12s); give this one its own version, or --force to replace it", name, version, old.SHA256, img.SHA256)
		}
	}
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, img.File)); err != nil {
		return nil, err
	}
	// The rename on disk before the record that names the file.
	if err := syncDirPath(dir); err != nil {
		return nil, fmt.Errorf("image add: %w", err)
	}
	if err := h.writeImageRecord(img); err != nil {
		return nil, err
	}
	h.say("stored %s %s: %s (%s, %s unpacked, sha256 %s)", name, version, filepath.Join(dir, img.File), plural(img.Files, "entry", "entries"), humanBytes(img.Unpacked), img.SHA256)
	return img, nil
}

// copyCompressed copies a .tar.gz as it is, and compresses a plain .tar.
func copyCompressed(src string, w io.Writer) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		_, err = io.Copy(w, br)
		return err
	}
	zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if _, err := io.Copy(zw, br); err != nil {
		return err
	}
	return zw.Close()
}

// identify finds an image's name and version: service.toml first, then the
// flags, then its top directory's name, then its file name
// (<name>-<version>.tar.gz).
func (h *Host) identify(src string, isDir bool, c *content, o AddOptions) (string, string, error) {
	var meta struct {
		Name    string `toml:"name"`
		Version string `toml:"version"`
	}
	if _, err := toml.Decode(string(c.TOML), &meta); err != nil {
		return "", "", fmt.Errorf("image's service.toml: %v", err)
	}
	base := filepath.Base(src)
	if !isDir {
		for _, ext := range []string{".tar.gz", ".tgz", ".tar"} {
			if b, ok := strings.CutSuffix(base, ext); ok {
				base = b
				break
			}
		}
	}
	name, version := meta.Name, meta.Version
	for _, p := range []struct{ flag, have, what string }{{o.Name, name, "name"}, {o.Version, version, "version"}} {
		if p.flag != "" && p.have != "" && p.flag != p.have {
			return "", "", fmt.Errorf("--%s %q differs from the %s in the image's service.toml (%q)", p.what, p.flag, p.what, p.have)
		}
	}
	if name == "" {
		name = o.Name
	}
	if version == "" {
		version = o.Version
	}
	for _, guess := range []string{c.Top, base} {
		if guess == "" {
			continue
		}
		n, v := splitNameVersion(guess)
		if name == "" {
			name = n
		}
		if version == "" && n == name {
			version = v
		}
	}
	if name == "" {
		return "", "", errors.New("the image has no name: set name in its service.toml, or use --name")
	}
	cfg, err := h.Config()
	if err != nil {
		return "", "", err
	}
	warn, err := cfg.CheckName(name)
	if err != nil {
		return "", "", err
	}
	if warn != "" {
		h.say("warning: %s", warn)
	}
	if version == "" {
		return "", "", fmt.Errorf("the image of %s has no version: set version in its service.toml, name the file %s-<version>.tar.gz, or use --version", name, name)
	}
	if err := CheckVersion(version); err != nil {
		return "", "", err
	}
	if _, ps := spec.Parse(h.Root, h.Path(serviceRel(name)), c.TOML); len(ps.Errors()) > 0 {
		return "", "", fmt.Errorf("the image's service.toml is not valid: %s", oneLine(ps.Errors().Error()))
	}
	return name, version, nil
}

// splitNameVersion reads "www-blog-1.2.0" as www-blog and 1.2.0: the
// version starts after the last "-" that a digit follows (or "v" and a digit).
func splitNameVersion(s string) (string, string) {
	for i := len(s) - 1; i > 0; i-- {
		if s[i] != '-' || i+1 >= len(s) {
			continue
		}
		v := s[i+1:]
		if v[0] == 'v' && len(v) > 1 {
			v = v[1:]
		}
		if v[0] >= '0' && v[0] <= '9' && spec.CheckName(s[:i]) == nil && CheckVersion(s[i+1:]) == nil {
			return s[:i], s[i+1:]
		}
	}
	if spec.CheckName(s) == nil {
		return s, ""
	}
	return "", ""
}

func (h *Host) recordRel(name, version string) string {
	return path.Join(homeImage, name+"-"+version+".json")
}

func (h *Host) readImage(name, version string) (*Image, error) {
	if h.Home == "" {
		return nil, errors.New("no operator home (--home) for ~/image")
	}
	f, err := h.home.Open(h.recordRel(name, version))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img := &Image{}
	if err := jsonDecode(f, img); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	if img.Name != name || img.Version != version || filepath.Base(img.File) != img.File {
		return nil, fmt.Errorf("%s: the record does not match its file name", f.Name())
	}
	return img, nil
}

func (h *Host) writeImageRecord(img *Image) error {
	b, err := jsonIndent(img)
	if err != nil {
		return err
	}
	_, err = h.home.WriteFileSync(h.recordRel(img.Name, img.Version), strings.NewReader(b), 0o644)
	return err
}

// Images lists the stored images (of name, or all when ""), oldest version
// first.
func (h *Host) Images(name string) ([]*Image, error) {
	if h.Home == "" {
		return nil, errors.New("no operator home (--home) for ~/image")
	}
	entries, err := os.ReadDir(h.home.abs(homeImage))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, e := range entries {
		b, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(b, ".") {
			continue
		}
		n, v := splitNameVersion(b)
		if n == "" || v == "" || (name != "" && n != name) {
			continue
		}
		img, err := h.readImage(n, v)
		if err != nil {
			continue
		}
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return CompareVersions(out[i].Version, out[j].Version) < 0
	})
	return out, nil
}

// FindImage finds the image of name at version, or its newest when
// version is "".
func (h *Host) FindImage(name, version string) (*Image, error) {
	if version != "" {
		if err := CheckVersion(version); err != nil {
			return nil, err
		}
		img, err := h.readImage(name, version)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no image of %s %s in %s (upkeep image add FILE)", name, version, h.home.abs(homeImage))
		}
		return img, err
	}
	imgs, err := h.Images(name)
	if err != nil {
		return nil, err
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("no image of %s in %s (upkeep image add FILE)", name, h.home.abs(homeImage))
	}
	return imgs[len(imgs)-1], nil
}

// CompareVersions orders versions naturally: runs of digits compare as
// numbers ("1.10" > "1.9"), the rest as text.
func CompareVersions(a, b string) int {
	for a != "" && b != "" {
		ca, ra := chunk(a)
		cb, rb := chunk(b)
		if c := compareChunk(ca, cb); c != 0 {
			return c
		}
		a, b = ra, rb
	}
	return len(a) - len(b)
}

func chunk(s string) (string, string) {
	digit := s[0] >= '0' && s[0] <= '9'
	i := 1
	for i < len(s) && (s[i] >= '0' && s[i] <= '9') == digit {
		i++
	}
	return s[:i], s[i:]
}

func compareChunk(a, b string) int {
	na, ea := strconv.ParseUint(a, 10, 64)
	nb, eb := strconv.ParseUint(b, 10, 64)
	switch {
	case ea == nil && eb == nil:
		switch {
		case na < nb:
			return -1
		case na > nb:
			return 1
		}
		return 0
	case ea == nil:
		return -1
	case eb == nil:
		return 1
	}
	return strings.Compare(a, b)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
