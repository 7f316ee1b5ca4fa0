package spec

import (
	"fmt"
	"strconv"
	"strings"
)

// Log is how a service's captured output (<name>.log, <name>.error.log) is
// rotated, in logrotate's vocabulary; the defaults are the guide's stanza
// (daily, rotate 7, compress, delaycompress, notifempty, missingok). The
// daemon does the rotating itself, between two writes, so none of
// copytruncate's lost lines.
type Log struct {
	// When is the time criterion: hourly | daily | weekly | monthly |
	// yearly, or never (by size only, logrotate's `size` alone).
	When string `toml:"when"`
	// Size also rotates a file once it is larger (logrotate's maxsize; with
	// when = "never" logrotate's size). MaxSize is the same setting under
	// logrotate's name: set one of the two; validation folds it into Size.
	Size    Size `toml:"size"`
	MaxSize Size `toml:"maxsize,omitempty"`
	// MinSize holds back a timed rotation until the file is larger.
	MinSize Size `toml:"minsize"`
	// Rotate is how many rotated files are kept: 0 discards the old
	// contents, -1 keeps every one (maxage still applies).
	Rotate        int  `toml:"rotate"`
	Compress      bool `toml:"compress"`
	DelayCompress bool `toml:"delaycompress"`
	NotIfEmpty    bool `toml:"notifempty"`
	MissingOK     bool `toml:"missingok"`
	// DateExt names rotated files <name>.log<DateFormat> (logrotate's
	// dateext) instead of <name>.log.1, .2, …
	DateExt       bool   `toml:"dateext"`
	DateFormat    string `toml:"dateformat"` // "": logrotate's default (DateFormatOf)
	DateYesterday bool   `toml:"dateyesterday"`
	// MaxAge removes rotated files older than this many days (0: no limit).
	MaxAge int `toml:"maxage"`
}

// Log criteria (When).
const (
	Hourly  = "hourly"
	Daily   = "daily"
	Weekly  = "weekly"
	Monthly = "monthly"
	Yearly  = "yearly"
	Untimed = "never"
)

// DefaultLog is the guide's logrotate stanza, minus su and copytruncate,
// which the daemon has no use for.
func DefaultLog() Log {
	return Log{When: Daily, Rotate: 7, Compress: true, DelayCompress: true, NotIfEmpty: true, MissingOK: true}
}

// DefaultDateFormat is logrotate's dateformat for a criterion.
func DefaultDateFormat(when string) string {
	if when == Hourly {
		return "-%Y%m%d%H"
	}
	return "-%Y%m%d"
}

// Timed reports whether files are rotated on a schedule.
func (l *Log) Timed() bool {
	switch l.When {
	case Hourly, Daily, Weekly, Monthly, Yearly:
		return true
	}
	return false
}

// check validates the section and folds maxsize into size; add reports a problem at a key of
// [log] ("when", "rotate", …).
func (l *Log) check(add func(key, format string, args ...any)) {
	if !l.Timed() && l.When != Untimed {
		add("when", "%q is not one of hourly, daily, weekly, monthly, yearly, never", l.When)
	}
	for _, s := range []struct {
		key string
		v   Size
	}{{"size", l.Size}, {"maxsize", l.MaxSize}, {"minsize", l.MinSize}} {
		if s.v < 0 {
			add(s.key, "must not be negative")
		}
	}
	if l.MaxSize != 0 {
		if l.Size != 0 && l.Size != l.MaxSize {
			add("maxsize", "is the same setting as size; set only one")
		}
		l.Size, l.MaxSize = l.MaxSize, 0
	}
	if l.Rotate < -1 {
		add("rotate", "must be -1 (keep all), 0 (keep none) or a count")
	}
	if l.MaxAge < 0 {
		add("maxage", "must be a number of days, 0 for no limit")
	}
	if l.DateFormat != "" {
		if err := CheckDateFormat(l.DateFormat); err != nil {
			add("dateformat", "%v", err)
		}
	}
}

// DateFormatOf is the dateformat in force: the one set, or logrotate's
// default for the criterion.
func (l *Log) DateFormatOf() string {
	if l.DateFormat == "" {
		return DefaultDateFormat(l.When)
	}
	return l.DateFormat
}

// CheckDateFormat accepts what logrotate's dateformat accepts: the strftime
// specifiers %Y %m %d %H %M %S %V %s and plain characters other than '/'.
func CheckDateFormat(f string) error {
	if strings.ContainsAny(f, "/\x00\n") {
		return fmt.Errorf("dateformat %q must not hold '/', NUL or a newline", f)
	}
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		if i == len(f) || !strings.ContainsRune("YmdHMSVs", rune(f[i])) {
			return fmt.Errorf("dateformat %q: only %%Y %%m %%d %%H %%M %%S %%V %%s are allowed", f)
		}
	}
	return nil
}

// Size is a number of bytes, written in TOML and logrotate as "512",
// "64k", "100M" or "1G" (powers of 1024, as logrotate counts).
type Size int64

func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	if !(v <= 1<<62) { // NaN and Inf too
		return fmt.Errorf("size %q is too large", b)
	}
	*s = Size(v)
	return nil
}

func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// String writes the size in the largest unit that holds it exactly, in
// logrotate's spelling (k, M, G).
func (s Size) String() string {
	for _, u := range []struct {
		suffix string
		n      Size
	}{{"G", 1 << 30}, {"M", 1 << 20}, {"k", 1 << 10}} {
		if s != 0 && s%u.n == 0 {
			return strconv.FormatInt(int64(s/u.n), 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// Section writes l as a service.toml [log] section: every setting, but
// sizes only when set, dateformat only when not the default.
func (l Log) Section() string {
	var b strings.Builder
	b.WriteString("[log]\n")
	fmt.Fprintf(&b, "when = %q\n", l.When)
	for _, s := range []struct {
		key string
		v   Size
	}{{"size", l.Size}, {"maxsize", l.MaxSize}, {"minsize", l.MinSize}} {
		if s.v > 0 {
			fmt.Fprintf(&b, "%s = %q\n", s.key, s.v.String())
		}
	}
	fmt.Fprintf(&b, "rotate = %d\ncompress = %v\ndelaycompress = %v\nnotifempty = %v\nmissingok = %v\ndateext = %v\n",
		l.Rotate, l.Compress, l.DelayCompress, l.NotIfEmpty, l.MissingOK, l.DateExt)
	if l.DateFormat != "" {
		fmt.Fprintf(&b, "dateformat = %q\n", l.DateFormat)
	}
	if l.DateYesterday {
		b.WriteString("dateyesterday = true\n")
	}
	if l.MaxAge > 0 {
		fmt.Fprintf(&b, "maxage = %d\n", l.MaxAge)
	}
	return b.String()
}
