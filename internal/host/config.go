package host

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/BurntSushi/toml"

	"upkeep/internal/spec"
)

// Config is the host-wide <root>/etc/upkeep/upkeep.toml. Every key is
// optional; a missing file is the defaults.
type Config struct {
	// Prefixes are the conventional service name prefixes.
	Prefixes []string `toml:"prefixes"`
	// StrictNames turns a name without one of the prefixes from a warning
	// into an error (validate and deploy).
	StrictNames bool `toml:"strict_names"`
	// KeepReleases is how many releases of a service are kept; older ones
	// are pruned after a deploy. A service's keep_releases wins.
	KeepReleases int `toml:"keep_releases"`
	// ImageMaxSize bounds the unpacked size of an image ("2G"): the
	// decompression-bomb guard.
	ImageMaxSize string `toml:"image_max_size"`
	// ImageMaxFiles bounds the number of entries of an image.
	ImageMaxFiles int `toml:"image_max_files"`
	// DBMount says var/db must be a mount point of its own; doctor checks it.
	DBMount bool `toml:"db_mount"`

	MaxSize int64 `toml:"-"` // ImageMaxSize in bytes
}

// Defaults of the host config.
const (
	DefaultKeepReleases  = 5
	DefaultImageMaxSize  = "4G"
	DefaultImageMaxFiles = 1_000_000
)

func defaultConfig() Config {
	return Config{
		Prefixes:      append([]string(nil), spec.Prefixes...),
		KeepReleases:  DefaultKeepReleases,
		ImageMaxSize:  DefaultImageMaxSize,
		ImageMaxFiles: DefaultImageMaxFiles,
	}
}

// Config reads the host config once; problems carry file:line:col.
func (h *Host) Config() (*Config, error) {
	if h.cfg != nil {
		return h.cfg, nil
	}
	c := defaultConfig()
	file := h.Path(ConfigFile)
	// Read like any program reads /etc: through symlinks. Only writes
	// beneath the root refuse them.
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return h.finishConfig(&c, file)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	md, err := toml.NewDecoder(bytes.NewReader(buf.Bytes())).Decode(&c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d:%d: %s", file, pe.Position.Line, max(pe.Position.Col, 1), strings.TrimPrefix(pe.Message, "toml: "))
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		line, col := spec.Locate(buf.String(), und[0].String())
		return nil, fmt.Errorf("%s:%d:%d: %s: unknown key", file, line, col, und[0])
	}
	return h.finishConfig(&c, file)
}

func (h *Host) finishConfig(c *Config, file string) (*Config, error) {
	size, err := spec.ParseSize(c.ImageMaxSize)
	if err != nil || size < 1 {
		return nil, fmt.Errorf("%s: image_max_size: want a size like \"4G\", got %q", file, c.ImageMaxSize)
	}
	c.MaxSize = int64(size)
	if c.KeepReleases < 1 {
		return nil, fmt.Errorf("%s: keep_releases: must be at least 1", file)
	}
	if c.ImageMaxFiles < 1 {
		return nil, fmt.Errorf("%s: image_max_files: must be at least 1", file)
	}
	for _, p := range c.Prefixes {
		if p == "" {
			return nil, fmt.Errorf("%s: prefixes: an empty prefix matches every name", file)
		}
	}
	h.cfg = c
	return c, nil
}

// CheckName applies the host's naming rules to name: it must be a safe
// file name (always an error), and should carry a conventional prefix (an
// error with strict_names, else a warning, returned as warn).
func (c *Config) CheckName(name string) (warn string, err error) {
	if err := spec.CheckName(name); err != nil {
		return "", err
	}
	if spec.HasPrefix(name, c.Prefixes) {
		return "", nil
	}
	msg := fmt.Sprintf("name %q has none of the conventional prefixes %s", name, strings.Join(c.Prefixes, ", "))
	if c.StrictNames {
		return "", errors.New(msg + " (strict_names = true in " + ConfigFile + ")")
	}
	return msg, nil
}

// LoadConfig reads the host config of root; validate uses it.
func LoadConfig(root string) (*Config, error) {
	h, err := New(root, "", nil)
	if err != nil {
		return nil, err
	}
	return h.Config()
}
