package host

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"
)

// Reading an image is hostile-input work: the archive may come from
// anywhere. Every entry is checked before it is written, the writes go to a
// fresh staging directory only, and the checks that need the whole archive
// (where symlinks lead) run before the staging directory is used.

// Limits bound what an image may hold.
type Limits struct {
	MaxSize     int64 // bytes of file content, in total: the decompression-bomb guard
	MaxFiles    int   // entries
	AllowSetuid bool  // accept setuid and setgid bits
}

// ImageError says why an image was refused, naming the entry.
type ImageError struct {
	Entry string // "" for the archive as a whole
	Msg   string
}

func (e *ImageError) Error() string {
	if e.Entry == "" {
		return "image refused: " + e.Msg
	}
	return fmt.Sprintf("image refused: entry %q: %s", e.Entry, e.Msg)
}

func refuse(entry, format string, args ...any) error {
	return &ImageError{Entry: entry, Msg: fmt.Sprintf(format, args...)}
}

// content is what reading an image found.
type content struct {
	Files int    // entries
	Bytes int64  // file content
	Top   string // the service's root inside the archive: "" or a single top directory
	TOML  []byte // its service.toml
}

type entry struct {
	typ    byte
	target string // symlinks
}

// sink is where a checked entry goes: a staging directory, or nowhere when
// an image is only checked.
type sink interface {
	dir(rel string, mode fs.FileMode) error
	file(rel string, mode fs.FileMode, r io.Reader, mtime time.Time) (int64, error)
	symlink(rel, target string) error
	link(rel, target string) error
	finish() error
}

const maxTOML = 1 << 20

// headerSlack bounds the tar stream beyond file content (headers, PAX
// records, padding), so a stream of headers is no bomb either.
const headerSlack = 64 << 20

// readImage reads a tar (gzip-compressed or not) from r, checks every entry
// and hands it to s.
func readImage(r io.Reader, lim Limits, s sink) (*content, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var stream io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		// klauspost/compress inflates this kind of stream about 1.4 times
		// as fast as compress/gzip, and reads the *bufio.Reader directly.
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, refuse("", "not a gzip stream: %v", err)
		}
		defer zr.Close()
		ar := newAsyncReader(zr)
		defer ar.Close()
		stream = ar
	}
	capped := &capReader{r: stream, left: lim.MaxSize + headerSlack}
	tr := tar.NewReader(capped)
	c := &content{}
	seen := map[string]*entry{}
	tomls := map[string][]byte{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if capped.over {
				return nil, refuse("", "larger than the limit of %s unpacked (a decompression bomb?)", sizeString(lim.MaxSize))
			}
			return nil, refuse("", "not a valid tar archive: %v", err)
		}
		rel, err := entryPath(hdr.Name)
		if err != nil {
			return nil, refuse(hdr.Name, "%v", err)
		}
		if rel == "" {
			if hdr.Typeflag == tar.TypeDir {
				continue // "./"
			}
			return nil, refuse(hdr.Name, "is not a file name")
		}
		if c.Files++; c.Files > lim.MaxFiles {
			return nil, refuse(hdr.Name, "more than %d entries (the limit)", lim.MaxFiles)
		}
		for a := path.Dir(rel); a != "."; a = path.Dir(a) {
			if e := seen[a]; e != nil && e.typ != tar.TypeDir {
				if e.typ == tar.TypeSymlink {
					return nil, refuse(hdr.Name, "goes through the symlink %q", a)
				}
				return nil, refuse(hdr.Name, "its parent %q is not a directory", a)
			}
		}
		// Parents the archive leaves out are made as directories: a later
		// entry of the same name is a duplicate like any other.
		for a := path.Dir(rel); a != "." && seen[a] == nil; a = path.Dir(a) {
			seen[a] = &entry{typ: tar.TypeDir}
		}
		if prev := seen[rel]; prev != nil {
			if prev.typ == tar.TypeDir && hdr.Typeflag == tar.TypeDir {
				continue
			}
			return nil, refuse(hdr.Name, "appears twice in the image")
		}
		mode := hdr.FileInfo().Mode()
		if mode&(fs.ModeSetuid|fs.ModeSetgid) != 0 && !lim.AllowSetuid {
			return nil, refuse(hdr.Name, "has the setuid or setgid bit (mode %04o); --allow-setuid accepts it", hdr.Mode&0o7777)
		}
		mode &= fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			if hdr.Size < 0 || hdr.Size > lim.MaxSize-c.Bytes {
				return nil, refuse(hdr.Name, "its %s would pass the limit of %s unpacked (a decompression bomb?)", sizeString(hdr.Size), sizeString(lim.MaxSize))
			}
			var body io.Reader = tr
			if base := path.Base(rel); base == "service.toml" && strings.Count(rel, "/") <= 1 {
				if hdr.Size > maxTOML {
					return nil, refuse(hdr.Name, "larger than %s", sizeString(maxTOML))
				}
				b, err := io.ReadAll(tr)
				if err != nil {
					return nil, refuse(hdr.Name, "%v", err)
				}
				tomls[rel] = b
				body = bytes.NewReader(b)
			}
			n, err := s.file(rel, mode, body, hdr.ModTime)
			if err != nil {
				return nil, fmt.Errorf("unpack %s: %w", rel, err)
			}
			c.Bytes += n
			hdr.Typeflag = tar.TypeReg
		case tar.TypeDir:
			if err := s.dir(rel, mode); err != nil {
				return nil, fmt.Errorf("unpack %s: %w", rel, err)
			}
		case tar.TypeSymlink:
			t := hdr.Linkname
			switch {
			case t == "" || strings.IndexByte(t, 0) >= 0:
				return nil, refuse(hdr.Name, "a symlink with an empty or invalid target")
			case path.IsAbs(t):
				return nil, refuse(hdr.Name, "a symlink to the absolute path %q, outside the image", t)
			}
			if err := s.symlink(rel, t); err != nil {
				return nil, fmt.Errorf("unpack %s: %w", rel, err)
			}
			seen[rel] = &entry{typ: tar.TypeSymlink, target: t}
			continue
		case tar.TypeLink:
			t, err := entryPath(hdr.Linkname)
			if err != nil || t == "" {
				return nil, refuse(hdr.Name, "a hard link to %q, outside the image", hdr.Linkname)
			}
			if e := seen[t]; e == nil || e.typ != tar.TypeReg {
				return nil, refuse(hdr.Name, "a hard link to %q, which is not an earlier file of the image", hdr.Linkname)
			}
			if err := s.link(rel, t); err != nil {
				return nil, fmt.Errorf("unpack %s: %w", rel, err)
			}
			hdr.Typeflag = tar.TypeReg
		case tar.TypeChar, tar.TypeBlock:
			return nil, refuse(hdr.Name, "a device file")
		case tar.TypeFifo:
			return nil, refuse(hdr.Name, "a FIFO")
		case tar.TypeGNUSparse:
			return nil, refuse(hdr.Name, "a sparse file (not supported)")
		default:
			return nil, refuse(hdr.Name, "an entry of unsupported type %q", hdr.Typeflag)
		}
		seen[rel] = &entry{typ: hdr.Typeflag}
	}
	if capped.over {
		return nil, refuse("", "larger than the limit of %s unpacked (a decompression bomb?)", sizeString(lim.MaxSize))
	}
	top, err := findTop(seen)
	if err != nil {
		return nil, err
	}
	c.Top = top
	c.TOML = tomls[path.Join(top, "service.toml")]
	// Where symlinks lead is known only once every entry is: check them all
	// against the finished tree, in a stable order.
	var links []string
	for rel, e := range seen {
		if e.typ == tar.TypeSymlink {
			links = append(links, rel)
		}
	}
	sort.Strings(links)
	for _, rel := range links {
		if err := resolveInside(seen, top, rel); err != nil {
			return nil, err
		}
	}
	if err := s.finish(); err != nil {
		return nil, err
	}
	return c, nil
}

// entryPath turns an archive name into a clean relative path, refusing
// absolute paths and any ".." component.
func entryPath(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", errors.New("has a NUL byte in its name")
	}
	if strings.HasPrefix(name, "/") {
		return "", errors.New("an absolute path")
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", errors.New("has a .. component")
		}
	}
	p := path.Clean(name)
	if p == "." {
		return "", nil
	}
	if len(p) > 4000 {
		return "", errors.New("a name longer than 4000 bytes")
	}
	for _, c := range strings.Split(p, "/") {
		if len(c) > 255 {
			return "", errors.New("a name component longer than 255 bytes")
		}
	}
	return p, nil
}

// findTop finds the service's root: the archive's top if it holds
// service.toml, or its single top directory if that one does.
func findTop(seen map[string]*entry) (string, error) {
	if e := seen["service.toml"]; e != nil && e.typ == tar.TypeReg {
		return "", nil
	}
	tops := map[string]bool{}
	for rel := range seen {
		tops[strings.SplitN(rel, "/", 2)[0]] = true
	}
	if len(tops) == 1 {
		for t := range tops {
			if e := seen[t+"/service.toml"]; e != nil && e.typ == tar.TypeReg && (seen[t] == nil || seen[t].typ == tar.TypeDir) {
				return t, nil
			}
		}
	}
	return "", refuse("", "no service.toml at its top (or in its single top directory)")
}

// resolveInside follows the symlink at rel through the image's own entries
// (symlinks included, as the kernel would) and refuses it if it leads out of
// the service's root at any step. Names that are not entries are plain
// directories or missing, which cannot lead anywhere.
func resolveInside(seen map[string]*entry, top, rel string) error {
	var stack []string // the current directory, beneath top
	inside := strings.TrimPrefix(rel, top+"/")
	if top == "" {
		inside = rel
	}
	if d := path.Dir(inside); d != "." {
		stack = strings.Split(d, "/")
	}
	todo := strings.Split(seen[rel].target, "/")
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return refuse(rel, "a symlink to %q, which leads outside the image", seen[rel].target)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, c)
		e := seen[path.Join(top, strings.Join(stack, "/"))]
		if e == nil || e.typ != tar.TypeSymlink {
			continue
		}
		if hops++; hops > 40 {
			return refuse(rel, "a symlink loop")
		}
		if path.IsAbs(e.target) {
			return refuse(rel, "a symlink to %q, which leads outside the image", seen[rel].target)
		}
		stack = stack[:len(stack)-1]
		todo = append(strings.Split(e.target, "/"), todo...)
	}
	return nil
}

// capReader fails a read past left bytes.
type capReader struct {
	r    io.Reader
	left int64
	over bool
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.over = true
		return 0, errors.New("size limit reached")
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// checkOnly is the sink of a check: it reads file content (so sizes and
// the stream are verified) and writes nothing.
type checkOnly struct{}

func (checkOnly) dir(string, fs.FileMode) error { return nil }
func (checkOnly) file(_ string, _ fs.FileMode, r io.Reader, _ time.Time) (int64, error) {
	return io.Copy(io.Discard, r)
}
func (checkOnly) symlink(string, string) error { return nil }
func (checkOnly) link(string, string) error    { return nil }
func (checkOnly) finish() error                { return nil }

// dirSink writes entries beneath a staging directory that upkeep just made
// (mode 0700, so nobody else can plant anything in it). Files are created
// with O_EXCL|O_NOFOLLOW, and readImage never lets an entry go through a
// symlink of the archive, so nothing is written outside it.
type dirSink struct {
	base    string
	made    map[string]bool
	dirMode map[string]fs.FileMode
}

func newDirSink(dir string) *dirSink {
	return &dirSink{base: dir, made: map[string]bool{".": true}, dirMode: map[string]fs.FileMode{}}
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

func (s *dirSink) parents(rel string) error {
	d := path.Dir(rel)
	if s.made[d] {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(s.base, d), 0o755); err != nil {
		return err
	}
	for ; d != "." && !s.made[d]; d = path.Dir(d) {
		s.made[d] = true
	}
	return nil
}

func (s *dirSink) dir(rel string, mode fs.FileMode) error {
	if err := s.parents(rel); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(s.base, rel), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	s.made[rel] = true
	// Applied at the end: a read-only directory must still take its entries.
	s.dirMode[rel] = mode
	return nil
}

func (s *dirSink) file(rel string, mode fs.FileMode, r io.Reader, mtime time.Time) (int64, error) {
	if err := s.parents(rel); err != nil {
		return 0, err
	}
	p := filepath.Join(s.base, rel)
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return 0, &fs.PathError{Op: "create", Path: p, Err: err}
	}
	buf := copyBufs.Get().(*[]byte)
	n, err := writeFD(fd, p, r, *buf)
	copyBufs.Put(buf)
	if err == nil {
		if e := unix.Fchmod(fd, unixMode(mode)); e != nil {
			err = &fs.PathError{Op: "chmod", Path: p, Err: e}
		}
	}
	if err == nil && !mtime.IsZero() {
		if e := futimens(fd, mtime); e != nil {
			err = &fs.PathError{Op: "utimensat", Path: p, Err: e}
		}
	}
	if e := unix.Close(fd); err == nil && e != nil {
		err = &fs.PathError{Op: "close", Path: p, Err: e}
	}
	return n, err
}

// writeFD copies r to the file fd (at p) through buf, in writes as large
// as r's reads (os.File.ReadFrom would copy through a 32K buffer of its
// own). Errors of r come back as they are.
func writeFD(fd int, p string, r io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		m, rerr := r.Read(buf)
		for b := buf[:m]; len(b) > 0; {
			w, err := unix.Write(fd, b)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return n, &fs.PathError{Op: "write", Path: p, Err: err}
			}
			b = b[w:]
			n += int64(w)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// unixMode turns permission, setuid and setgid bits into chmod(2)'s.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= unix.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		u |= unix.S_ISGID
	}
	return u
}

// futimens sets fd's access and modification times: utimensat(fd, NULL,
// ...), which x/sys/unix does not wrap; it saves the path lookup of
// os.Chtimes for each file.
func futimens(fd int, t time.Time) error {
	ts := [2]unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func (s *dirSink) symlink(rel, target string) error {
	if err := s.parents(rel); err != nil {
		return err
	}
	return os.Symlink(target, filepath.Join(s.base, rel))
}

func (s *dirSink) link(rel, target string) error {
	if err := s.parents(rel); err != nil {
		return err
	}
	return os.Link(filepath.Join(s.base, target), filepath.Join(s.base, rel))
}

func (s *dirSink) finish() error {
	dirs := make([]string, 0, len(s.dirMode))
	for d := range s.dirMode {
		dirs = append(dirs, d)
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		if err := os.Chmod(filepath.Join(s.base, d), s.dirMode[d]); err != nil {
			return err
		}
	}
	return nil
}

// packDir writes the directory src as a gzip-compressed tar to w: what
// `image add DIR` stores. Symlinks are kept as symlinks (readImage then
// checks where they lead); devices, FIFOs and sockets are refused.
func packDir(src string, w io.Writer) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		var target string
		switch m := fi.Mode(); {
		case m&fs.ModeSymlink != 0:
			if target, err = os.Readlink(p); err != nil {
				return err
			}
		case m&fs.ModeDevice != 0:
			return refuse(rel, "a device file")
		case m&fs.ModeNamedPipe != 0:
			return refuse(rel, "a FIFO")
		case m&fs.ModeSocket != 0:
			return refuse(rel, "a socket")
		case !m.IsRegular() && !m.IsDir():
			return refuse(rel, "an entry of unsupported type")
		}
		hdr, err := tar.FileInfoHeader(fi, target)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dG", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dM", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dK", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// asyncReader decompresses ahead in its own goroutine, so that inflating
// the next megabytes and writing the last ones to files overlap (gzip is
// single-threaded, and the writes are system calls). Eight chunks of 1 MiB
// absorb the unevenness of file creation (a create costs from 10 µs to
// 1 ms on ext4 here, depending on what else the disk does).
type asyncReader struct {
	chunks chan []byte
	free   chan []byte
	done   chan struct{}
	cur    []byte
	buf    []byte
	err    error
	errc   chan error
}

const asyncChunk, asyncDepth = 1 << 20, 8

func newAsyncReader(r io.Reader) *asyncReader {
	a := &asyncReader{chunks: make(chan []byte, asyncDepth), free: make(chan []byte, asyncDepth+1), done: make(chan struct{}), errc: make(chan error, 1)}
	for range asyncDepth + 1 {
		a.free <- make([]byte, asyncChunk)
	}
	go func() {
		defer close(a.chunks)
		for {
			select {
			case <-a.done:
				return
			default:
			}
			var b []byte
			select {
			case b = <-a.free:
			case <-a.done:
				return
			}
			n, err := io.ReadFull(r, b)
			if n > 0 {
				select {
				case a.chunks <- b[:n]:
				case <-a.done:
					return
				}
			}
			if err != nil {
				if err == io.ErrUnexpectedEOF {
					err = io.EOF
				}
				a.errc <- err
				return
			}
		}
	}()
	return a
}

func (a *asyncReader) Read(p []byte) (int, error) {
	for len(a.cur) == 0 {
		if a.buf != nil {
			a.free <- a.buf[:cap(a.buf)]
			a.buf = nil
		}
		if a.err != nil {
			return 0, a.err
		}
		b, ok := <-a.chunks
		if !ok {
			a.err = <-a.errc
			continue
		}
		a.buf, a.cur = b, b
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	return n, nil
}

// Close stops the goroutine; the reader must not be used after.
func (a *asyncReader) Close() {
	close(a.done)
	for range a.chunks {
	}
}
