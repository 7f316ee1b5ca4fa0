package control

import (
	"reflect"
	"testing"
)

func TestParseStatus(t *testing.T) {
	const ok = "Name:\tsh\nUid:\t1000\t1001\t1001\t1001\nGid:\t100\t2000\t2000\t2000\nGroups:\t2001 2002 \n"
	for _, tc := range []struct {
		in     string
		euid   uint32
		groups []uint32
		err    bool
	}{
		{ok, 1001, []uint32{2000, 2001, 2002}, false},
		{"Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n", 0, []uint32{0}, false},
		{"Uid:\t0\t0\t0\t0\nGroups:\t1\n", 0, nil, true},          // no Gid
		{"Gid:\t0\t0\t0\t0\n", 0, nil, true},                      // no Uid
		{"Uid:\t0\nGid:\t0\t0\n", 0, nil, true},                   // Uid without its effective field
		{"Uid:\t0\tx\nGid:\t0\t0\n", 0, nil, true},                // not a number
		{"Uid:\t0\t0\nGid:\t0\t0\nGroups:\t1 -2\n", 0, nil, true}, // a bad group
		{"Uid:\t0\t4294967296\nGid:\t0\t0\n", 0, nil, true},       // past 32 bits
	} {
		euid, groups, err := parseStatus(tc.in)
		if (err != nil) != tc.err || err == nil && (euid != tc.euid || !reflect.DeepEqual(groups, tc.groups)) {
			t.Errorf("parseStatus(%q) = %d %v %v", tc.in, euid, groups, err)
		}
	}
}

func FuzzParseStatus(f *testing.F) {
	f.Add("Name:\tsh\nUid:\t1000\t1001\t1001\t1001\nGid:\t100\t2000\t2000\t2000\nGroups:\t2001 2002 \n")
	f.Add("Uid:\t0\t0\nGid:\t0\t0\nGroups:\t\n")
	f.Add("Uid:\t0\nGid:")
	f.Fuzz(func(t *testing.T, s string) {
		euid, groups, err := parseStatus(s)
		if err == nil && len(groups) == 0 {
			t.Errorf("parseStatus(%q) = %d with no groups and no error", s, euid)
		}
	})
}

// TestRefusals: what a refused peer is told, for each way the groups can
// be set up.
func TestRefusals(t *testing.T) {
	users := map[uint32]string{1000: "alice"}
	both := Access{AdminGroup: "upkeep", ReadGroup: "ro", Admin: []uint32{2000}, Read: []uint32{2001}, users: users}
	adminOnly := Access{AdminGroup: "upkeep", Admin: []uint32{2000}, users: users}
	missing := Access{AdminGroup: "upkeep", ReadGroup: "ro", users: users} // neither group exists
	readOnly := Access{ReadGroup: "ro", Read: []uint32{2001}}
	alice := Peer{Uid: 1000, Groups: []uint32{1000}}
	reading := Peer{Uid: 1000, Groups: []uint32{1000, 2001}}
	for _, tc := range []struct {
		a    Access
		p    Peer
		need level
		want string
	}{
		{both, alice, reader, `permission denied: uid 1000 (alice) is not root or in group "upkeep" or "ro"`},
		{both, alice, admin, `permission denied: uid 1000 (alice) is not root or in group "upkeep"`},
		{both, reading, admin, `permission denied: uid 1000 (alice) may only read (group "ro"); restart needs root or group "upkeep"`},
		{adminOnly, alice, reader, `permission denied: uid 1000 (alice) is not root or in group "upkeep"`},
		{missing, alice, reader, `permission denied: uid 1000 (alice) is not root`},
		{readOnly, Peer{Uid: 7}, reader, `permission denied: uid 7 is not root or in group "ro"`},
		{readOnly, Peer{Uid: 7, Groups: []uint32{2001}}, admin, `permission denied: uid 7 may only read (group "ro"); restart needs root`},
		{Access{Self: 1000, users: users}, Peer{Uid: 7}, reader, `permission denied: uid 7 is not root or uid 1000 (the daemon's)`},
	} {
		has := tc.a.level(tc.p)
		if has >= tc.need {
			t.Errorf("%+v may do %d with %+v", tc.p, tc.need, tc.a)
			continue
		}
		if got := tc.a.refusal(tc.p, has, tc.need, "restart"); got != tc.want {
			t.Errorf("refusal:\n got %s\nwant %s", got, tc.want)
		}
	}
	if (Access{Self: 1000}).level(alice) != admin {
		t.Error("the daemon's own user is not admin")
	}
	if both.level(Peer{Uid: 0}) != admin || both.level(Peer{Uid: 5, Groups: []uint32{9, 2000}}) != admin {
		t.Error("root or an admin-group member is not admin")
	}
}
