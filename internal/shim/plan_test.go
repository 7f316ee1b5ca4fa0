package shim

import (
	"reflect"
	"strings"
	"testing"
)

func u32(v uint32) *uint32 { return &v }

func TestPlanRoundTrip(t *testing.T) {
	for _, p := range []Plan{
		{Name: "x"},
		{Name: "", Dir: ""},
		{Name: "/bin/a;b%c=d", Dir: "/srv/%3B;;%", NNP: true},
		{Name: "sleep", Dir: "/", Umask: u32(0), DropBounding: true},
		{Name: "sleep", Umask: u32(0o7777), Limits: []Limit{{7, 512, 1000}, {4, 0, 0}, {6, ^uint64(0), ^uint64(0)}}},
		{Name: "sh", DropBounding: true, Bounding: []uintptr{10, 0, 40}, Ambient: []uintptr{10}, Cred: &Cred{Uid: 65534, Gid: 65534, Groups: []uint32{4, 65534}}, NNP: true},
		{Name: "sh", Cred: &Cred{Uid: 1<<32 - 1, Gid: 0}},
	} {
		s := p.Encode()
		got, err := Decode(s)
		if err != nil {
			t.Errorf("%+v: Decode(%q): %v", p, s, err)
			continue
		}
		if !reflect.DeepEqual(*got, p) {
			t.Errorf("Decode(%q) = %+v, want %+v", s, *got, p)
		}
	}
}

func TestPlanEncoding(t *testing.T) {
	p := Plan{Name: "/bin/sleep", Dir: "/srv", Umask: u32(0o27), Limits: []Limit{{7, 512, 1000}},
		DropBounding: true, Bounding: []uintptr{10}, Cred: &Cred{Uid: 65534, Gid: 65534, Groups: []uint32{4}}, Ambient: []uintptr{10}, NNP: true}
	want := "name=/bin/sleep;dir=/srv;umask=23;limit=7,512,1000;bounding=10;cred=65534,65534,4;ambient=10;nnp"
	if got := p.Encode(); got != want {
		t.Errorf("Encode = %q, want %q", got, want)
	}
}

func TestDecodeRejects(t *testing.T) {
	for s, want := range map[string]string{
		"name=x;uid=3":                   `field "uid": unknown field`,
		"umask=8888":                     `field "umask": bad number "8888"`,
		"umask=":                         `field "umask": wrong count`,
		"limit=7,1":                      `field "limit": wrong count`,
		"limit=7,1,18446744073709551616": `field "limit": bad number`,
		"limit=70000,1,1":                `field "limit": resource out of range`,
		"cred=1":                         `field "cred": wrong count`,
		"cred=1,4294967296":              `field "cred": bad number`,
		"bounding=a":                     `field "bounding": bad number "a"`,
		"ambient=1,,2":                   `field "ambient": bad number ""`,
		"name=%4":                        `field "name": bad escape`,
		"dir=%zz":                        `field "dir": bad escape`,
	} {
		if _, err := Decode(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Decode(%q) = %v, want %q", s, err, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("name=/bin/sleep;dir=/srv;umask=23;limit=7,512,1000;bounding=10;cred=65534,65534,4;ambient=10;nnp")
	f.Add("name=a%3Bb;bounding=")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Decode(s)
		if err != nil {
			return
		}
		// What decodes encodes to something that decodes the same.
		q, err := Decode(p.Encode())
		if err != nil || !reflect.DeepEqual(p, q) {
			t.Errorf("Decode(%q) = %+v; re-encoded %q decodes to %+v, %v", s, p, p.Encode(), q, err)
		}
	})
}
