package spec

import (
	"bytes"
	"encoding"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// The decoder stops at the first value of the wrong type and says so in its
// own words ("incompatible types: TOML value has type string; destination
// has type slice"). typeProblems finds every such value instead, each in
// the operator's words, so that Parse can report them all and validate the
// rest of the file.

// typeProblems walks a decoded file (raw, as toml decodes into a map)
// beside the type it is meant for, calls add for each value the decoder
// would refuse, and deletes those values from raw. Keys the type does not
// have are left for the unknown-key check.
func typeProblems(t reflect.Type, raw map[string]any, prefix string, add func(key, msg string)) {
	fields := tomlFields(t)
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, ok := fields[k]
		if !ok {
			continue
		}
		key := prefix + k
		if msg := valueProblem(f, raw[k], key, add); msg != "" {
			add(key, msg)
			delete(raw, k)
		}
	}
}

// valueProblem says what is wrong with v as a value of type t, or "";
// tables and arrays of tables are walked key by key instead.
func valueProblem(t reflect.Type, v any, key string, add func(key, msg string)) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if !custom(t) {
		switch {
		case t.Kind() == reflect.Struct:
			m, ok := v.(map[string]any)
			if !ok {
				return fmt.Sprintf("must be a table ([%s]), not %s", key, describe(v))
			}
			typeProblems(t, m, key+".", add)
			return ""
		case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
			m, ok := v.(map[string]any)
			if !ok {
				return `must be a table, such as { NAME = "value" }`
			}
			// Each entry at its own key: env.PORT = 8080.
			for _, k := range sortedKeys(m) {
				if msg := valueProblem(t.Elem(), m[k], key+"."+k, add); msg != "" {
					add(key+"."+k, msg)
					delete(m, k)
				}
			}
			return ""
		case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct && !custom(t.Elem()):
			tables, ok := tablesOf(v)
			if !ok {
				return fmt.Sprintf("must be an array of tables ([[%s]]), not %s", key, describe(v))
			}
			for i, m := range tables {
				typeProblems(t.Elem(), m, fmt.Sprintf("%s[%d].", key, i), add)
			}
			return ""
		}
	}
	err := decodeAs(t, v)
	if err == nil {
		return ""
	}
	return wrongType(t, v, err)
}

// custom reports whether t decodes itself (a duration, a size, a limit).
func custom(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) || p.Implements(reflect.TypeFor[toml.Unmarshaler]())
}

// tablesOf returns an array of tables as maps: [[check]] decodes to
// []map[string]any, check = [{...}] to []any of maps.
func tablesOf(v any) ([]map[string]any, bool) {
	switch x := v.(type) {
	case []map[string]any:
		return x, true
	case []any:
		out := make([]map[string]any, len(x))
		for i, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, false
			}
			out[i] = m
		}
		return out, true
	}
	return nil, false
}

// decodeAs decodes v alone into a value of type t, the way the decoder
// would inside the whole file: the one judge of what is accepted.
func decodeAs(t reflect.Type, v any) error {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(map[string]any{"v": v}); err != nil {
		return err
	}
	holder := reflect.New(reflect.StructOf([]reflect.StructField{{Name: "V", Type: t, Tag: `toml:"v"`}}))
	_, err := toml.NewDecoder(&buf).Decode(holder.Interface())
	return err
}

var decoderPrefixRE = regexp.MustCompile(`^toml: (line \d+ )?(\(last key "v"\): )?`)

// wrongType is the operator's sentence for a value the decoder refused.
func wrongType(t reflect.Type, v any, err error) string {
	_, isString := v.(string)
	switch {
	case t == reflect.TypeFor[Duration]() && !isString:
		return fmt.Sprintf(`must be a duration string such as "5s", not %s`, describe(v))
	case custom(t):
		// Its own words: "not a duration (want e.g. ...)", a size's.
		return decoderPrefixRE.ReplaceAllString(err.Error(), "")
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		if s, ok := v.(string); ok {
			return "must be a list of strings, e.g. " + exampleList(s)
		}
		if l, ok := v.([]any); ok {
			for i, e := range l {
				if _, ok := e.(string); !ok {
					return fmt.Sprintf("must be a list of strings; element %d is %s", i+1, describe(e))
				}
			}
		}
		return "must be a list of strings, not " + describe(v)
	case t.Kind() == reflect.String:
		return "must be a string, not " + describe(v)
	case t.Kind() == reflect.Bool:
		return "must be true or false, not " + describe(v)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "must be a whole number, not " + describe(v)
	}
	return decoderPrefixRE.ReplaceAllString(err.Error(), "")
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// exampleList writes a command line as the list it was meant to be:
// "/bin/sleep 100" → ["/bin/sleep", "100"].
func exampleList(s string) string {
	words := strings.Fields(s)
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = strconv.Quote(w)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// describe names a TOML value as an operator wrote it.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return "the string " + strconv.Quote(x)
	case int64:
		return "the number " + strconv.FormatInt(x, 10)
	case float64:
		return "the number " + strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return "the boolean " + strconv.FormatBool(x)
	case time.Time:
		return "a date or time"
	case []any, []map[string]any:
		return "a list"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%v", v)
}

// tomlFields maps the TOML keys of a struct type to their types, with the
// fields of embedded structs (Privileges) inline, as the decoder has them.
func tomlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	if t.Kind() != reflect.Struct {
		return out
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		switch {
		case name == "-" || !f.IsExported():
			continue
		case f.Anonymous && name == "":
			for k, ft := range tomlFields(f.Type) {
				out[k] = ft
			}
			continue
		case name == "":
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// knownKeys lists the keys of the table at path (nil: the top level) of a
// service.toml, for "did you mean".
func knownKeys(path []string) []string {
	t := reflect.TypeFor[Service]()
	for _, p := range path {
		ft, ok := tomlFields(t)[p]
		if !ok {
			return nil
		}
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		t = ft
	}
	fields := tomlFields(t)
	keys := make([]string, 0, len(fields)+1)
	for k := range fields {
		keys = append(keys, k)
	}
	if len(path) == 1 && path[0] == "log" {
		keys = append(keys, "file") // [[log.file]], decoded apart
	}
	sort.Strings(keys)
	return keys
}

// valuePos moves a key's position (line:col of the key) to its value, just
// after the "=": where a type problem is.
func valuePos(text string, line, col int) (int, int) {
	off := offsetOf(text, line, col)
	if off < 0 {
		return line, col
	}
	end := strings.IndexByte(text[off:], '\n')
	if end < 0 {
		end = len(text) - off
	}
	eq := strings.IndexByte(text[off:off+end], '=')
	if eq < 0 {
		return line, col
	}
	i := off + eq + 1
	for i < off+end && (text[i] == ' ' || text[i] == '\t') {
		i++
	}
	return lineCol(text, i)
}
