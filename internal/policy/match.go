package policy

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode"
)

// A rule is a slash-separated path pattern beneath the root (path.Match
// syntax per component: "*" never crosses a "/"). It matches a path that
// it names and everything beneath it, so "etc/sudoers*" covers
// etc/sudoers.d/evil, and "home/*/.ssh/" every user's .ssh. A trailing
// slash only says the rule names a directory. NAME is the service's name.

// Refusal is one path the policy refuses, with the rule that does.
type Refusal struct {
	Path   string // cleaned, root-relative (or config-relative for a symlink)
	Rule   string // the rule as written; "" when no allow rule covers the path
	Why    string // set when the reason is not a rule (a symlink, .. )
	Source string // the policy file
}

func (r Refusal) Error() string {
	switch {
	case r.Why != "":
		return fmt.Sprintf("%s: refused: %s (%s)", r.Path, r.Why, r.Source)
	case r.Rule != "":
		return fmt.Sprintf("%s: refused by deny rule %q (%s)", r.Path, r.Rule, r.Source)
	}
	return fmt.Sprintf("%s: refused: no allow rule covers it (%s [overlay] allow)", r.Path, r.Source)
}

// CheckPath judges one file (dir false) or directory (dir true) that the
// overlay of service name would have beneath the root at rel. Deny rules
// match without regard to case (a case-insensitive file system under
// /etc must not open a way round them); allow rules match exactly. A
// directory on the way to an allow rule (etc/, etc/nginx/) is allowed.
func (p *Policy) CheckPath(name, rel string, dir bool) *Refusal {
	ref := func(r Refusal) *Refusal { r.Source = p.Source; return &r }
	rel = strings.TrimPrefix(rel, "/")
	if c := path.Clean(rel); c == ".." || strings.HasPrefix(c, "../") {
		return ref(Refusal{Path: rel, Why: "leaves the root"})
	}
	clean := strings.TrimPrefix(path.Clean("/"+rel), "/")
	if clean == "" {
		return nil // the root itself
	}
	if r := matchAny(Denied, clean, name, true); r != "" {
		return ref(Refusal{Path: clean, Rule: r})
	}
	if r := matchAny(p.Overlay.Deny, clean, name, true); r != "" {
		return ref(Refusal{Path: clean, Rule: r})
	}
	if matchAny(p.Overlay.Allow, clean, name, false) != "" {
		return nil
	}
	if dir && onTheWay(p.Overlay.Allow, clean, name) {
		return nil
	}
	return ref(Refusal{Path: clean})
}

// CheckLink judges a symlink in a service's config/ at rel (config-relative)
// with target: it may only lead to somewhere inside the service's own
// release, or the overlay's link to it would lay any file of the host
// (/etc/shadow, another service's secrets) where the service reads it.
func (p *Policy) CheckLink(rel, target string) *Refusal {
	ref := func(why string) *Refusal {
		return &Refusal{Path: path.Clean(rel), Why: why, Source: p.Source}
	}
	if target == "" || path.IsAbs(target) {
		return ref(fmt.Sprintf("a symlink to %q, outside the service's release", target))
	}
	to := path.Join("config", path.Dir(path.Clean("/" + rel))[1:], target)
	if to == ".." || strings.HasPrefix(to, "../") {
		return ref(fmt.Sprintf("a symlink to %q, which leaves the service's release", target))
	}
	return nil
}

// matchAny returns the first of rules that matches p (or a directory
// holding p), with NAME replaced by name; "" if none does. With fold, the
// rule and p compare case-folded.
func matchAny(rules []string, p, name string, fold bool) string {
	if fold {
		p = foldCase(p)
	}
	for _, r := range rules {
		pat := strings.ReplaceAll(normRule(r), "NAME", name)
		if fold {
			pat = foldCase(pat)
		}
		if matchPrefix(pat, p) {
			return r
		}
	}
	return ""
}

// foldCase maps each rune to the least of its case-folding orbit, so that
// strings equal under Unicode case folding map to the same string:
// "ETC/SUDOERS", "etc/sudoers" and "etc/\u017fudoers" (a long s, which a
// casefolding ext4 directory takes for an s). strings.ToLower would
// leave the long s alone.
func foldCase(s string) string {
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}, s)
}

// matchPrefix reports whether pattern matches p or one of its ancestors.
func matchPrefix(pattern, p string) bool {
	n := strings.Count(pattern, "/") + 1
	parts := strings.Split(p, "/")
	if len(parts) < n {
		return false
	}
	ok, err := path.Match(pattern, strings.Join(parts[:n], "/"))
	return err == nil && ok
}

// onTheWay reports whether directory d is an ancestor of what some rule
// allows: the overlay must be able to make etc/nginx to lay
// etc/nginx/sites-available/x.
func onTheWay(rules []string, d, name string) bool {
	parts := strings.Split(d, "/")
	for _, r := range rules {
		pat := strings.Split(strings.ReplaceAll(normRule(r), "NAME", name), "/")
		if len(pat) <= len(parts) {
			continue
		}
		all := true
		for i, c := range parts {
			if ok, err := path.Match(pat[i], c); err != nil || !ok {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// normRule is a rule without its leading or trailing slashes.
func normRule(r string) string {
	return strings.Trim(strings.TrimSpace(r), "/")
}

// checkRule says why r cannot be a rule.
func checkRule(r string) error {
	n := normRule(r)
	if n == "" || n == "." {
		return errors.New("an empty rule would match the whole root")
	}
	for _, c := range strings.Split(n, "/") {
		switch c {
		case "", ".", "..":
			return fmt.Errorf("has an empty, . or .. component")
		}
	}
	if _, err := path.Match(n, ""); err != nil {
		return fmt.Errorf("not a valid pattern: %v", err)
	}
	return nil
}
