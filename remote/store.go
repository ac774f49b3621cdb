package remote

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gofrs/flock"
	"github.com/google/renameio/v2"
)

// Store is the remotes of one stint root.
type Store struct {
	dir string
}

// Files under the store's directory.
const (
	listFile = "remotes.json"
	certFile = "client.crt"
	keyFile  = "client.key"
	lockFile = "lock"
)

type listJSON struct {
	Remotes []Remote `json:"remotes"`
}

// Open returns the store of root (<root>/remotes/), creating the
// directory (0700) if missing.
func Open(root string) (*Store, error) {
	dir := filepath.Join(root, "remotes")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, &Error{Op: "open store", Err: err}
	}
	return &Store{dir: dir}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// locked runs fn holding the store's lock, with the stored list.
func (s *Store) locked(fn func(l *listJSON) (save bool, err error)) error {
	lk := flock.New(filepath.Join(s.dir, lockFile))
	if err := lk.Lock(); err != nil {
		return &Error{Op: "lock store", Err: err}
	}
	defer lk.Unlock()
	l, err := s.load()
	if err != nil {
		return err
	}
	save, err := fn(l)
	if err != nil || !save {
		return err
	}
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return &Error{Op: "save store", Err: err}
	}
	if err := renameio.WriteFile(filepath.Join(s.dir, listFile), append(b, '\n'), 0o600); err != nil {
		return &Error{Op: "save store", Err: err}
	}
	return nil
}

func (s *Store) load() (*listJSON, error) {
	var l listJSON
	b, err := os.ReadFile(filepath.Join(s.dir, listFile))
	if errors.Is(err, fs.ErrNotExist) {
		return &l, nil
	}
	if err != nil {
		return nil, &Error{Op: "read store", Err: err}
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, &Error{Op: "read store", Err: fmt.Errorf("%s: %w", filepath.Join(s.dir, listFile), err)}
	}
	return &l, nil
}

// List returns the stored remotes and the presets, sorted by name.
func (s *Store) List() ([]Remote, error) {
	var out []Remote
	err := s.locked(func(l *listJSON) (bool, error) {
		out = append(out, l.Remotes...)
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	for _, p := range Presets {
		if !slices.ContainsFunc(out, func(r Remote) bool { return r.Name == p.Name }) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b Remote) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Get returns the remote called name (a stored one or a preset). A name
// never added is a *UsageError wrapping ErrUnknown.
func (s *Store) Get(name string) (Remote, error) {
	if err := ValidName(name); err != nil {
		return Remote{}, err
	}
	var r Remote
	found := false
	err := s.locked(func(l *listJSON) (bool, error) {
		i := slices.IndexFunc(l.Remotes, func(r Remote) bool { return r.Name == name })
		if i >= 0 {
			r, found = l.Remotes[i], true
		}
		return false, nil
	})
	if err != nil {
		return Remote{}, err
	}
	if !found {
		var ok bool
		if r, ok = preset(name); !ok {
			return Remote{}, usage(name, fmt.Errorf("%w (see stint remote list)", ErrUnknown))
		}
	}
	return r, nil
}

// Remove forgets the remote called name. Unknown names and presets are a
// *UsageError.
func (s *Store) Remove(name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	return s.locked(func(l *listJSON) (bool, error) {
		i := slices.IndexFunc(l.Remotes, func(r Remote) bool { return r.Name == name })
		if i < 0 {
			if _, ok := preset(name); ok {
				return false, usage(name, fmt.Errorf("%w: built in, can't be removed", ErrPreset))
			}
			return false, usage(name, ErrUnknown)
		}
		l.Remotes = slices.Delete(l.Remotes, i, i+1)
		return true, nil
	})
}

// put stores r, which must not exist yet (checked under the lock).
func (s *Store) put(r Remote) error {
	return s.locked(func(l *listJSON) (bool, error) {
		if err := s.free(l, r.Name); err != nil {
			return false, err
		}
		l.Remotes = append(l.Remotes, r)
		return true, nil
	})
}

// free reports a *UsageError when name is taken in l or by a preset.
func (s *Store) free(l *listJSON, name string) error {
	if _, ok := preset(name); ok {
		return usage(name, fmt.Errorf("%w: the name is a built-in remote", ErrExists))
	}
	if slices.ContainsFunc(l.Remotes, func(r Remote) bool { return r.Name == name }) {
		return usage(name, fmt.Errorf("%w (stint remote remove it first)", ErrExists))
	}
	return nil
}

// checkFree is free without a write.
func (s *Store) checkFree(name string) error {
	return s.locked(func(l *listJSON) (bool, error) { return false, s.free(l, name) })
}
