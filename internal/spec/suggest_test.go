package spec

import "testing"

func TestSuggest(t *testing.T) {
	keys := []string{"command", "ready_after", "restart", "user", "group", "groups", "depends_on"}
	for _, tc := range []struct{ word, want string }{
		{"comand", "command"},  // a deletion
		{"commnad", "command"}, // a swap is two edits
		{"ready_afer", "ready_after"},
		{"grup", "group"},
		{"groups", ""}, // itself: no suggestion
		{"xyz", ""},    // nothing close
		{"dependson", "depends_on"},
		{"usr", "user"},
		{"", ""}, // distance 4 and more from all
	} {
		if got := Suggest(tc.word, keys); got != tc.want {
			t.Errorf("Suggest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
	if got := Suggest("stauts", []string{"start", "status", "stop"}); got != "status" {
		t.Errorf("a swap: %q", got)
	}
	if got := Suggest("www-helo", []string{"api-app", "www-hello", "www-help"}); got != "www-hello" {
		t.Errorf("service name: %q", got)
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"abc", "abc", 0}, {"abc", "acb", 1}, {"flaw", "lawn", 2},
		{"stauts", "status", 1}, {"stauts", "start", 2}, {"ca", "abc", 3}, // optimal string alignment: no edit twice
	} {
		if got := distance(tc.a, tc.b, 10); got != tc.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := distance(tc.b, tc.a, 10); got != tc.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tc.b, tc.a, got, tc.want)
		}
	}
	if got := distance("kitten", "sitting", 2); got != 2 {
		t.Errorf("limited distance = %d, want the limit 2", got)
	}
}

// The distance is a metric on what it measures: zero only for equal
// strings, symmetric, never more than the longer length, and the limit
// caps it without changing smaller values.
func FuzzDistance(f *testing.F) {
	for _, s := range [][2]string{{"stauts", "status"}, {"", "x"}, {"kitten", "sitting"}, {"ab", "ba"}, {"www-helo", "www-hello"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if len(a) > 64 || len(b) > 64 {
			return // names and keys are short; the table is quadratic
		}
		limit := max(len(a), len(b)) + 1
		d := distance(a, b, limit)
		if (d == 0) != (a == b) || d != distance(b, a, limit) || d > max(len(a), len(b)) {
			t.Fatalf("distance(%q, %q) = %d, reversed %d", a, b, d, distance(b, a, limit))
		}
		if c := distance(a, b, 2); c != min(d, 2) {
			t.Fatalf("distance(%q, %q) limited to 2 = %d, want %d", a, b, c, min(d, 2))
		}
	})
}
