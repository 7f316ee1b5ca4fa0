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
