package logsink

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"upkeep/internal/spec"
)

// historyMain is the bench's generator of a log history (bench/logs.sh,
// READ=1): HIST_BYTES of numbered lines captured into DIR/NAME.log (and a
// tenth of that into NAME.error.log, interleaved), through Sinks with the
// defaults plus size rotation every HIST_ROTATE_MB, so that the history is
// what the daemon would have left: rotated files, compressed but the
// newest, and their time indexes.
func historyMain() int {
	dir, name := os.Getenv("DIR"), os.Getenv("NAME")
	total, _ := strconv.ParseInt(os.Getenv("HIST_BYTES"), 10, 64)
	rot, _ := strconv.ParseInt(os.Getenv("HIST_ROTATE_MB"), 10, 64)
	if dir == "" || name == "" || total <= 0 || rot <= 0 {
		fmt.Fprintln(os.Stderr, "history: DIR, NAME, HIST_BYTES and HIST_ROTATE_MB are needed")
		return 2
	}
	cfg := spec.DefaultLog()
	cfg.When, cfg.Size, cfg.Rotate = spec.Untimed, spec.Size(rot<<20), int(total/(rot<<20))+2
	out, err := OpenWith(filepath.Join(dir, name+".log"), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	errs, err := OpenWith(filepath.Join(dir, name+".error.log"), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Batches of 64 KiB, as a busy service's reads come: one mark each.
	var batch bytes.Buffer
	line := make([]byte, 0, lineLen)
	var written, batches int64
	for i := int64(0); written < total; i++ {
		line = appendLine(line[:0], i)
		batch.Write(line)
		if batch.Len() >= 64<<10 {
			out.Write(batch.Bytes())
			written += int64(batch.Len())
			batch.Reset()
			if batches++; batches%10 == 0 {
				fmt.Fprintf(errs, "warning after line %d\n", i)
			}
		}
	}
	out.Write(batch.Bytes())
	out.Close()
	errs.Close()
	out.Wait()
	errs.Wait()
	return 0
}
