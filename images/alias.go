package images

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ValidAlias checks an alias: non-empty, at most 255 bytes, no white
// space, control character or '='; '/' separates segments (debian/12/cloud),
// which may not be empty, "." or "..". Errors wrap ErrInvalidAlias.
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
