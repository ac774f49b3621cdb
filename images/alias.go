package images

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ValidAlias checks an alias: non-empty, at most 255 bytes, no white
// space, control character, '=' or ':'; '/' separates segments
// (debian/12/cloud), which may not be empty, "." or "..". Errors wrap
// ErrInvalidAlias.
//
// ':' is refused because an image reference REMOTE:ALIAS names an image on
// a remote: a local alias "a:b" would read as alias b of remote a as soon
// as a remote called a is added. An alias with ':' that a store already
// holds (made before this rule) still resolves, unless its part before the
// ':' is a known remote, which wins.
func ValidAlias(a string) error {
	bad := func(why string) error { return fmt.Errorf("alias %q: %w: %s", a, ErrInvalidAlias, why) }
	switch {
	case a == "":
		return bad("empty")
	case len(a) > 255:
		return bad("longer than 255 bytes")
	case !utf8.ValidString(a):
		return bad("not UTF-8")
	case strings.ContainsFunc(a, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) || c == '=' }):
		return bad("white space, control characters and '=' are not allowed")
	case strings.Contains(a, ":"):
		return bad("':' is not allowed: it separates a remote from its alias (REMOTE:ALIAS)")
	}
	for _, seg := range strings.Split(a, "/") {
		switch seg {
		case "":
			return bad("empty segment (leading, trailing or double '/')")
		case ".", "..":
			return bad(`"." and ".." segments are not allowed`)
		}
	}
	return nil
}

// checkAliases fails when one of aliases names an image other than fp.
// With move, an alias naming another image is taken from it instead.
func checkAliases(ix *index, fp string, aliases []string, move bool) error {
	for _, a := range aliases {
		if err := ValidAlias(a); err != nil {
			return err
		}
		for _, img := range ix.Images {
			if img.Fingerprint == fp || !contains(img.Aliases, a) {
				continue
			}
			if !move {
				return fmt.Errorf("alias %q: %w by image %s", a, ErrAliasExists, img.Fingerprint[:12])
			}
			img.removeAlias(a)
		}
	}
	return nil
}

// AddAlias points alias at the image ref names.
func (s *Store) AddAlias(ref, alias string) error {
	return s.withLock(func(ix *index) (bool, error) {
		img, err := resolve(ix, ref)
		if err != nil {
			return false, err
		}
		if err := checkAliases(ix, img.Fingerprint, []string{alias}, false); err != nil {
			return false, err
		}
		img.addAliases(alias)
		return true, nil
	})
}

// RemoveAlias removes alias from whichever image carries it.
func (s *Store) RemoveAlias(alias string) error {
	return s.withLock(func(ix *index) (bool, error) {
		for _, img := range ix.Images {
			if contains(img.Aliases, alias) {
				img.removeAlias(alias)
				return true, nil
			}
		}
		return false, fmt.Errorf("alias %q: %w", alias, ErrNotFound)
	})
}

// CheckAliasesFree fails early, before a download, when one of aliases is
// invalid (ErrInvalidAlias) or, unless move, names an image that isn't
// keep(image) (ErrAliasExists). Import checks again under the store's lock.
func (s *Store) CheckAliasesFree(aliases []string, move bool, keep func(*Image) bool) error {
	for _, a := range aliases {
		if err := ValidAlias(a); err != nil {
			return err
		}
	}
	if move || len(aliases) == 0 {
		return nil
	}
	imgs, err := s.List()
	if err != nil {
		return err
	}
	for _, a := range aliases {
		for _, img := range imgs {
			if contains(img.Aliases, a) && !keep(img) {
				return fmt.Errorf("alias %q: %w by image %s", a, ErrAliasExists, img.Fingerprint[:12])
			}
		}
	}
	return nil
}

// SupersededProperty marks an image built for a spec set's [image.NAME]
// whose alias SET/NAME has moved to a newer build: its value is the newer
// image's fingerprint. Prune removes such an image once no alias names it.
const SupersededProperty = "stint.superseded_by"

// SpecAlias is the alias of spec set set's [image.name]: "set/name". It is
// scoped by the set, so a build in one set never takes another set's
// alias; the bare name resolves too while it is unique (see Resolve).
func SpecAlias(set, name string) string { return set + "/" + name }

// Superseded reports whether img is an old build of a spec image that
// nothing names any more (see SupersededProperty).
func Superseded(img *Image) bool {
	return img.Properties[SupersededProperty] != "" && len(img.Aliases) == 0
}

// NameForSpec points SpecAlias(set, name) at the image fp, taking it
// from the image that had it (an earlier build of the same [image.NAME] of
// the same set), which is marked superseded when no alias is left on it.
// fp loses a superseded mark of its own (a recipe changed back). Nothing
// is written when the alias is already fp's.
func (s *Store) NameForSpec(set, name, fp string) (*Image, error) {
	alias := SpecAlias(set, name)
	if err := ValidAlias(alias); err != nil {
		return nil, err
	}
	var out *Image
	err := s.withLock(func(ix *index) (bool, error) {
		i := slices.IndexFunc(ix.Images, func(img *Image) bool { return img.Fingerprint == fp })
		if i < 0 {
			return false, fmt.Errorf("image %s: %w", fp, ErrNotFound)
		}
		img := ix.Images[i]
		out = img.clone()
		if contains(img.Aliases, alias) && img.Properties[SupersededProperty] == "" {
			return false, nil
		}
		for _, old := range ix.Images {
			if old != img && contains(old.Aliases, alias) {
				old.removeAlias(alias)
				if len(old.Aliases) == 0 {
					setProperty(old, SupersededProperty, fp)
				}
			}
		}
		img.addAliases(alias)
		delete(img.Properties, SupersededProperty)
		out = img.clone()
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("name image %s %s: %w", fp, alias, err)
	}
	return out, nil
}

func setProperty(img *Image, key, value string) {
	if img.Properties == nil {
		img.Properties = map[string]string{}
	}
	img.Properties[key] = value
}

// resolveBare resolves a bare spec image name (no '/' or ':'): the one
// image carrying an alias SET/name, whatever the set. None is (nil, nil);
// several images are an *AmbiguousError listing their aliases.
func resolveBare(ix *index, name string) (*Image, error) {
	if name == "" || strings.ContainsAny(name, "/:") {
		return nil, nil
	}
	var found []*Image
	var aliases []string
	for _, img := range ix.Images {
		for _, a := range img.Aliases {
			if _, n, ok := strings.Cut(a, "/"); ok && n == name {
				aliases = append(aliases, a)
				if !slices.Contains(found, img) {
					found = append(found, img)
				}
			}
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return found[0], nil
	}
	slices.Sort(aliases)
	return nil, &AmbiguousError{Ref: name, Matches: aliases}
}
