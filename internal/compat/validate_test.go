package compat

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"upkeep/internal/spec"
)

// TestValidateKeysOnly: validate gives spec.Parse only the keys of a
// service.toml, between the header and the notes. For every service the
// testdata and the benchmark file import to, spec.Parse must read the
// keys and the whole file the same way.
func TestValidateKeysOnly(t *testing.T) {
	var in []Input
	files, _ := filepath.Glob("testdata/import/*/*")
	for _, f := range files {
		if strings.HasSuffix(f, ".golden") {
			continue
		}
		if data, err := os.ReadFile(f); err == nil {
			in = append(in, Input{Path: f, Data: data})
		}
	}
	in = append(in, Input{Path: "bench.monitrc", Data: monitFile(50), Format: Monit})
	n := 0
	for _, one := range in {
		r := Import([]Input{one}, osOptions)
		for _, d := range r.Services {
			n++
			data, keys := d.render()
			if keys[0] <= 0 || keys[1] < keys[0] || keys[1] > len(data) {
				t.Fatalf("%s: keys at %v of %d bytes", d.Name, keys, len(data))
			}
			whole, wps := spec.Parse("/", "/var/www/"+d.Name, data)
			part, pps := spec.Parse("/", "/var/www/"+d.Name, data[keys[0]:keys[1]])
			if !reflect.DeepEqual(whole, part) || len(wps.Errors()) != len(pps.Errors()) {
				t.Errorf("%s: the keys alone read differently:\n%v\n%v\n%s", d.Name, wps, pps, data)
			}
			if !commentLines(data[:keys[0]]) || !commentLines(data[keys[1]:]) {
				t.Errorf("%s: header or notes are not comment lines:\n%s", d.Name, data)
			}
		}
	}
	if n < 40 {
		t.Errorf("only %d services compared", n)
	}
}

// commentLines must never pass what TOML refuses: each byte and a few
// runes as a comment, with a key after it.
func TestCommentLines(t *testing.T) {
	var texts []string
	for c := 0; c < 256; c++ {
		texts = append(texts, "x"+string([]byte{byte(c)})+"y")
	}
	texts = append(texts, "", "\t", "é", "\u2028", "\uFEFF", "…", "\U0001F600", "\xed\xa0\x80", "\xc0\xaf", "a\r")
	for _, s := range texts {
		doc := "# " + s + "\n"
		var v map[string]any
		_, err := toml.Decode(doc+"a = 1\n", &v)
		ok := commentLines([]byte(doc))
		if ok && (err != nil || v["a"] != int64(1)) {
			t.Errorf("%q: commentLines passes what TOML reads as %v, %v", s, v, err)
		}
		// Stricter is allowed where render never writes it: a CR before
		// the newline (CRLF).
		if !ok && err == nil && utf8.ValidString(s) && !strings.HasSuffix(s, "\r") {
			t.Errorf("%q: commentLines refuses a comment TOML reads", s)
		}
	}
	for _, bad := range []string{"#a", "a = 1\n", " # a\n", "#a\nb\n"} {
		if commentLines([]byte(bad)) {
			t.Errorf("%q passed", bad)
		}
	}
	if !commentLines([]byte("\n#a\n\n#   b\tc\n")) {
		t.Error("blank and comment lines refused")
	}
}
