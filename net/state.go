package stintnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gofrs/flock"
	"github.com/google/renameio/v2"
)

// State is what stint remembers about its networks, in <state>/state.json
// (see StateDir).
type State struct {
	// Bridges are the managed bridges by name.
	Bridges map[string]*Bridge `json:"bridges"`
	// Leases are the attached containers by container name.
	Leases map[string]*Lease `json:"leases"`
}

// Bridge is one managed bridge: its subnet and gateway (the bridge's own
// address), and where allocation continues.
type Bridge struct {
	Name    string `json:"name"`
	Subnet  string `json:"subnet"`  // e.g. 10.88.0.0/24
	Gateway string `json:"gateway"` // e.g. 10.88.0.1
	// Next is the host part where the next search for a free address starts,
	// so that a just-released address is not reused at once (stale ARP).
	Next uint32 `json:"next,omitempty"`
}

// store is the state file with its lock. Every change goes through update,
// which holds an exclusive flock across load, change and save, so several
// stint processes (and goroutines with their own store) allocate safely.
type store struct {
	dir string
}

func (s *store) path() string { return filepath.Join(s.dir, "state.json") }

// update locks, loads the state, runs fn and saves the state if fn succeeds.
func (s *store) update(fn func(*State) error) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("network state dir %s: %w", s.dir, err)
	}
	lk := flock.New(filepath.Join(s.dir, "lock"))
	if err := lk.Lock(); err != nil {
		return fmt.Errorf("lock network state %s: %w", s.dir, err)
	}
	defer func() { _ = lk.Unlock() }()
	st, err := s.load()
	if err != nil {
		return err
	}
	if err := fn(st); err != nil {
		return err
	}
	return s.save(st)
}

// read returns a snapshot of the state under a shared lock.
func (s *store) read() (*State, error) {
	lk := flock.New(filepath.Join(s.dir, "lock"))
	if _, err := os.Stat(s.dir); errors.Is(err, fs.ErrNotExist) {
		return newState(), nil
	}
	if err := lk.RLock(); err != nil {
		return nil, fmt.Errorf("lock network state %s: %w", s.dir, err)
	}
	defer func() { _ = lk.Unlock() }()
	return s.load()
}

func newState() *State {
	return &State{Bridges: map[string]*Bridge{}, Leases: map[string]*Lease{}}
}

func (s *store) load() (*State, error) {
	st := newState()
	b, err := os.ReadFile(s.path())
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read network state: %w", err)
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("parse network state %s: %w", s.path(), err)
	}
	if st.Bridges == nil {
		st.Bridges = map[string]*Bridge{}
	}
	if st.Leases == nil {
		st.Leases = map[string]*Lease{}
	}
	return st, nil
}

func (s *store) save(st *State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode network state: %w", err)
	}
	// Atomic: a crash leaves the old or the new state, never half of one.
	if err := renameio.WriteFile(s.path(), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write network state %s: %w", s.path(), err)
	}
	return nil
}
