package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/google/renameio/v2"

	"github.com/stintdev/stint/runner/reconcile"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
)

// setOwner is who applied a set last: the directory of its first spec file,
// and whether a `name` key named it. It lives in <SpecDir>/sets/<set>.json.
type setOwner struct {
	Dir   string `json:"dir"`
	Named bool   `json:"named,omitempty"`
}

// ownerOf is the owner s would record.
func ownerOf(s *spec.Set) (setOwner, bool) {
	if s == nil || len(s.Files) == 0 {
		return setOwner{}, false
	}
	return setOwner{Dir: filepath.Dir(s.Files[0]), Named: s.Named}, true
}

func (b *LongLived) ownerPath(set string) string {
	return filepath.Join(b.SpecDir, "sets", set+".json")
}

// checkOwner refuses to work on set for specs s from another directory
// than the one that made the set's containers, unless both name the set
// explicitly (then the user asked for one set). A set without containers has
// no owner to respect (a stale owner file after down is ignored). When it
// may go on, the owner is recorded if the set has containers, or claim
// says it is about to have one.
func (b *LongLived) checkOwner(set string, s *spec.Set, claim bool) error {
	want, ok := ownerOf(s)
	if !ok || s.Name != set {
		return nil // no spec set in use (down by name): nothing to compare
	}
	owned, err := b.hasContainers(set)
	if err != nil {
		return err
	}
	have, found, err := b.readOwner(set)
	if err != nil {
		return err
	}
	if owned && found && !sameDir(have.Dir, want.Dir) && !(have.Named && want.Named) {
		return &reconcile.SetOwnedError{Set: set, Dir: have.Dir}
	}
	// The same directory by another path keeps the recorded one: a symlink
	// used once and removed later must not lock the directory out.
	if !(owned || claim) || (found && have.Named == want.Named && sameDir(have.Dir, want.Dir)) {
		return nil
	}
	return b.writeOwner(set, want)
}

// sameDir: a and b are one directory, however reached (a symlink, a
// trailing slash). When either cannot be stat'ed (the recorded directory
// is gone), their resolved paths compare instead.
func sameDir(a, b string) bool {
	ai, aerr := os.Stat(a)
	bi, berr := os.Stat(b)
	if aerr == nil && berr == nil {
		return os.SameFile(ai, bi)
	}
	return resolved(a) == resolved(b)
}

// resolved is p with its symlinks resolved, or just cleaned if it cannot be.
func resolved(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return filepath.Clean(p)
}

// ForgetSet removes set's owner file once no container of the set is
// left (after down): a set that is gone leaves nothing under SpecDir. With
// a container left (a deletion that failed), the owner stays.
func (b *LongLived) ForgetSet(set string) error {
	if owned, err := b.hasContainers(set); err != nil || owned {
		return err
	}
	if err := os.Remove(b.ownerPath(set)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("owner of set %s: %w", set, err)
	}
	return nil
}

// hasContainers reports whether a container of set has a record.
func (b *LongLived) hasContainers(set string) (bool, error) {
	recs, err := b.Records()
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(recs, func(r state.Record) bool { return r.Set == set }), nil
}

func (b *LongLived) readOwner(set string) (setOwner, bool, error) {
	var o setOwner
	data, err := os.ReadFile(b.ownerPath(set))
	if errors.Is(err, fs.ErrNotExist) {
		return o, false, nil
	}
	if err != nil {
		return o, false, fmt.Errorf("owner of set %s: %w", set, err)
	}
	if err := json.Unmarshal(data, &o); err != nil {
		return o, false, fmt.Errorf("owner of set %s: %s: %w", set, b.ownerPath(set), err)
	}
	return o, true, nil
}

func (b *LongLived) writeOwner(set string, o setOwner) error {
	data, err := json.Marshal(o)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(b.ownerPath(set)), 0o700); err != nil {
		return fmt.Errorf("owner of set %s: %w", set, err)
	}
	if err := renameio.WriteFile(b.ownerPath(set), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("owner of set %s: %w", set, err)
	}
	return nil
}
