package host

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tarEntry is one entry of a test archive; typ defaults to a regular file.
type tarEntry struct {
	name   string
	typ    byte
	body   string
	size   int64 // a regular file of size zero bytes instead of body
	link   string
	mode   int64
	header func(*tar.Header)
}

// makeTar builds a gzip-compressed tar of entries, the way hostile images
// are built: archive/tar writes whatever it is given.
func makeTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if hdr.Typeflag == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.body))
			if e.size > 0 {
				hdr.Size = e.size
			}
		}
		if e.header != nil {
			e.header(hdr)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("%s: %v", e.name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if e.size > 0 {
				zero := make([]byte, 1<<20)
				for left := e.size; left > 0; {
					n := min(left, int64(len(zero)))
					tw.Write(zero[:n])
					left -= n
				}
			} else {
				tw.Write([]byte(e.body))
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

var okTOML = tarEntry{name: "service.toml", body: "version = \"1.0.0\"\ncommand = [\"/bin/sleep\", \"1000\"]\n"}

var testLimits = Limits{MaxSize: 1 << 20, MaxFiles: 1000}

// Each hostile archive is refused, with a message naming the entry, and
// unpacking it leaves nothing behind: not in the staging directory's
// parent, not outside.
func TestHostileImages(t *testing.T) {
	tests := []struct {
		name    string
		entries []tarEntry
		lim     *Limits
		want    string // in the error
	}{
		{"absolute path", []tarEntry{okTOML, {name: "/etc/passwd", body: "x"}}, nil, `entry "/etc/passwd": an absolute path`},
		{"dot-dot", []tarEntry{okTOML, {name: "../escape", body: "x"}}, nil, `entry "../escape": has a .. component`},
		{"dot-dot inside", []tarEntry{okTOML, {name: "a/../../escape", body: "x"}}, nil, `entry "a/../../escape": has a .. component`},
		{"symlink absolute", []tarEntry{okTOML, {name: "l", typ: tar.TypeSymlink, link: "/etc"}}, nil, `entry "l": a symlink to the absolute path "/etc", outside the image`},
		{"symlink up", []tarEntry{okTOML, {name: "d/l", typ: tar.TypeSymlink, link: "../../x"}}, nil, `entry "d/l": a symlink to "../../x", which leads outside the image`},
		{"symlink chain", []tarEntry{okTOML,
			{name: "l1", typ: tar.TypeSymlink, link: "."},
			{name: "x/m", typ: tar.TypeSymlink, link: "../l1/.."}}, nil, `entry "x/m": a symlink to "../l1/..", which leads outside the image`},
		{"symlink through a symlink", []tarEntry{okTOML,
			{name: "a/c", typ: tar.TypeSymlink, link: "b/../.."},
			{name: "a/b", typ: tar.TypeSymlink, link: ".."}}, nil, `entry "a/c": a symlink to "b/../..", which leads outside the image`},
		{"symlink loop", []tarEntry{okTOML,
			{name: "a", typ: tar.TypeSymlink, link: "b/x"},
			{name: "b", typ: tar.TypeSymlink, link: "a/x"}}, nil, `a symlink loop`},
		{"write through symlink", []tarEntry{okTOML,
			{name: "l", typ: tar.TypeSymlink, link: "d"},
			{name: "l/x", body: "x"}}, nil, `entry "l/x": goes through the symlink "l"`},
		{"symlink then file over it", []tarEntry{okTOML,
			{name: "l", typ: tar.TypeSymlink, link: "d"},
			{name: "l", body: "x"}}, nil, `entry "l": appears twice in the image`},
		{"hardlink absolute", []tarEntry{okTOML, {name: "h", typ: tar.TypeLink, link: "/etc/shadow"}}, nil, `entry "h": a hard link to "/etc/shadow", outside the image`},
		{"hardlink up", []tarEntry{okTOML, {name: "h", typ: tar.TypeLink, link: "../x"}}, nil, `entry "h": a hard link to "../x", outside the image`},
		{"hardlink to later or missing", []tarEntry{okTOML, {name: "h", typ: tar.TypeLink, link: "nope"}}, nil, `entry "h": a hard link to "nope", which is not an earlier file of the image`},
		{"hardlink to symlink", []tarEntry{okTOML, {name: "l", typ: tar.TypeSymlink, link: "service.toml"}, {name: "h", typ: tar.TypeLink, link: "l"}}, nil, `which is not an earlier file`},
		{"char device", []tarEntry{okTOML, {name: "dev/null", typ: tar.TypeChar, header: func(h *tar.Header) { h.Devmajor, h.Devminor = 1, 3 }}}, nil, `entry "dev/null": a device file`},
		{"block device", []tarEntry{okTOML, {name: "sda", typ: tar.TypeBlock, header: func(h *tar.Header) { h.Devmajor = 8 }}}, nil, `entry "sda": a device file`},
		{"fifo", []tarEntry{okTOML, {name: "pipe", typ: tar.TypeFifo}}, nil, `entry "pipe": a FIFO`},
		{"setuid", []tarEntry{okTOML, {name: "bin/su", body: "#!", mode: 0o4755}}, nil, `entry "bin/su": has the setuid or setgid bit (mode 4755); --allow-setuid accepts it`},
		{"setgid", []tarEntry{okTOML, {name: "bin/sg", body: "#!", mode: 0o2755}}, nil, `entry "bin/sg": has the setuid or setgid bit`},
		{"bomb: one big file", []tarEntry{okTOML, {name: "zeros", size: 2 << 20}}, nil, `entry "zeros": its 2M would pass the limit of 1M unpacked (a decompression bomb?)`},
		{"bomb: many files", []tarEntry{okTOML, {name: "z1", size: 600 << 10}, {name: "z2", size: 600 << 10}}, nil, `entry "z2": its 600K would pass the limit of 1M unpacked`},
		{"too many entries", []tarEntry{okTOML, {name: "a", body: "1"}, {name: "b", body: "2"}}, &Limits{MaxSize: 1 << 20, MaxFiles: 2}, `entry "b": more than 2 entries (the limit)`},
		{"file over an implicit directory", []tarEntry{okTOML, {name: "d/f", body: "x"}, {name: "d", body: "y"}}, nil, `entry "d": appears twice in the image`},
		{"long component", []tarEntry{okTOML, {name: strings.Repeat("x", 256), body: "x"}}, nil, `a name component longer than 255 bytes`},
		{"file as parent", []tarEntry{okTOML, {name: "f", body: "x"}, {name: "f/g", body: "y"}}, nil, `entry "f/g": its parent "f" is not a directory`},
		{"no service.toml", []tarEntry{{name: "x", body: "1"}}, nil, `no service.toml at its top`},
		{"two tops", []tarEntry{{name: "a/service.toml", body: "1"}, {name: "b/x", body: "1"}}, nil, `no service.toml at its top`},
		{"top-dir symlink escapes the service root", []tarEntry{{name: "svc/service.toml", body: okTOML.body}, {name: "svc/l", typ: tar.TypeSymlink, link: "../svc/x"}}, nil, `entry "svc/l": a symlink to "../svc/x", which leads outside the image`},
		{"sparse", []tarEntry{okTOML, {name: "s", typ: tar.TypeGNUSparse, header: func(h *tar.Header) { h.Format = tar.FormatGNU }}}, nil, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := testLimits
			if tt.lim != nil {
				lim = *tt.lim
			}
			data := makeTar(t, tt.entries...)
			// Checked only: refused the same way.
			if _, err := readImage(bytes.NewReader(data), lim, checkOnly{}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("check: got %v, want %q", err, tt.want)
			}
			// Unpacked into a staging directory, beside a sentinel.
			parent := t.TempDir()
			outside := t.TempDir()
			sentinel := filepath.Join(outside, "passwd")
			os.WriteFile(sentinel, []byte("keep"), 0o644)
			h := testHost(t)
			_, err := h.unpack(bytes.NewReader(data), lim, parent)
			var ie *ImageError
			if err == nil || !errors.As(err, &ie) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("unpack: got %v, want an ImageError with %q", err, tt.want)
			}
			if tt.want != "" && !strings.Contains(tt.want, "no service.toml") && !strings.HasPrefix(tt.want, "a symlink loop") && ie.Entry == "" {
				t.Errorf("the error names no entry: %v", err)
			}
			left, _ := os.ReadDir(parent)
			if len(left) != 0 {
				t.Errorf("left behind in the staging parent: %v", names(left))
			}
			if b, _ := os.ReadFile(sentinel); string(b) != "keep" {
				t.Error("the sentinel outside was changed")
			}
		})
	}
}

func names(es []fs.DirEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// What passes: a top directory, implicit parents, in-image symlinks
// (relative, through other symlinks, dangling but inside), hard links,
// modes, --allow-setuid.
func TestUnpackGoodImage(t *testing.T) {
	data := makeTar(t,
		tarEntry{name: "www-blog-1.2.0/", typ: tar.TypeDir},
		tarEntry{name: "www-blog-1.2.0/service.toml", body: okTOML.body},
		tarEntry{name: "www-blog-1.2.0/bin/run", body: "#!/bin/sh\n", mode: 0o755},
		tarEntry{name: "www-blog-1.2.0/bin/suid", body: "x", mode: 0o4755},
		tarEntry{name: "www-blog-1.2.0/current", typ: tar.TypeSymlink, link: "bin"},
		tarEntry{name: "www-blog-1.2.0/x/up", typ: tar.TypeSymlink, link: "../current/run"},
		tarEntry{name: "www-blog-1.2.0/x/later", typ: tar.TypeSymlink, link: "../not-yet"},
		tarEntry{name: "www-blog-1.2.0/hard", typ: tar.TypeLink, link: "www-blog-1.2.0/bin/run"},
		tarEntry{name: "www-blog-1.2.0/ro/", typ: tar.TypeDir, mode: 0o555},
		tarEntry{name: "www-blog-1.2.0/ro/f", body: "in a read-only dir"},
	)
	lim := testLimits
	lim.AllowSetuid = true
	h := testHost(t)
	parent := t.TempDir()
	u, err := h.unpack(bytes.NewReader(data), lim, parent)
	if err != nil {
		t.Fatal(err)
	}
	if u.Top != "www-blog-1.2.0" || !strings.Contains(string(u.TOML), "1.0.0") {
		t.Errorf("top %q toml %q", u.Top, u.TOML)
	}
	root := u.Dir
	if b, err := os.ReadFile(filepath.Join(root, "x/up")); err != nil || string(b) != "#!/bin/sh\n" {
		t.Errorf("x/up: %q %v", b, err)
	}
	fi, _ := os.Stat(filepath.Join(root, "bin/run"))
	if fi.Mode().Perm() != 0o755 || !fi.ModTime().Equal(time.Unix(1700000000, 0)) {
		t.Errorf("bin/run mode %v mtime %v", fi.Mode(), fi.ModTime())
	}
	if fi, _ := os.Stat(filepath.Join(root, "bin/suid")); fi.Mode()&fs.ModeSetuid == 0 {
		t.Errorf("setuid bit dropped with AllowSetuid: %v", fi.Mode())
	}
	if fi, _ := os.Stat(filepath.Join(root, "ro")); fi.Mode().Perm() != 0o555 {
		t.Errorf("ro mode %v", fi.Mode())
	}
	a, _ := os.Stat(filepath.Join(root, "hard"))
	b, _ := os.Stat(filepath.Join(root, "bin/run"))
	if !os.SameFile(a, b) {
		t.Error("hard link is not the same file")
	}
	os.Chmod(filepath.Join(root, "ro"), 0o755)
}

// A plain tar (not compressed) reads the same.
func TestPlainTar(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "service.toml", Mode: 0o644, Size: int64(len(okTOML.body)), Typeflag: tar.TypeReg})
	tw.Write([]byte(okTOML.body))
	tw.Close()
	if _, err := readImage(&buf, testLimits, checkOnly{}); err != nil {
		t.Fatal(err)
	}
}

// Garbage and truncated archives are refused as such.
func TestBrokenArchives(t *testing.T) {
	good := makeTar(t, okTOML, tarEntry{name: "big", body: strings.Repeat("x", 10000)})
	for name, data := range map[string][]byte{
		"garbage":   []byte("this is not a tar archive at all, not even close........"),
		"truncated": good[:len(good)/2],
		"bad gzip":  append([]byte{0x1f, 0x8b}, bytes.Repeat([]byte{0xff}, 100)...),
	} {
		if _, err := readImage(bytes.NewReader(data), testLimits, checkOnly{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func testHost(t testing.TB) *Host {
	t.Helper()
	h, err := New(t.TempDir(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h.IsRoot = false
	h.pol = lenientPolicy(t) // these tests are about mechanics; policy_test.go holds the policy's
	return h
}
