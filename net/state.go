package stintnet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/gofrs/flock"
	"github.com/google/renameio/v2"

	"github.com/stintdev/stint/internal/plural"
)

// State is what stint remembers about its networks, in <state>/state.json
// (see StateDir).
type State struct {
	// Bridges are the managed bridges by name.
	Bridges map[string]*Bridge `json:"bridges"`
	// Leases are the attached containers by container name.
	Leases map[string]*Lease `json:"leases"`
	// Reserved are addresses in use by containers whose lease could not be
	// recovered when a corrupt state was rebuilt (see Reservation).
	Reserved []*Reservation `json:"reserved,omitempty"`
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

// CorruptStateError is returned by the state store's load when state.json
// exists but is not a state stint wrote: torn, garbled, or of the wrong
// shape. Only the store's update handles it (see store.recoverCorrupt): no
// caller of the Manager ever sees it unless the rebuild fails too.
type CorruptStateError struct {
	Path string // the state file
	Err  error  // what is wrong with it
}

func (e *CorruptStateError) Error() string {
	return fmt.Sprintf("network state %s is corrupt: %v", e.Path, e.Err)
}

func (e *CorruptStateError) Unwrap() error { return e.Err }

// store is the state file with its lock. Every change goes through update,
// which holds an exclusive flock across load, change and save, so several
// stint processes (and goroutines with their own store) allocate safely.
type store struct {
	dir string
	// warn receives the message about a corrupt state moved aside
	// (os.Stderr when nil).
	warn io.Writer
}

func (s *store) path() string { return filepath.Join(s.dir, "state.json") }

// update locks, loads the state, runs fn and saves the state if fn succeeds.
// A corrupt state is moved aside and rebuilt from the kernel here, and only
// here: read comes here when it meets one.
func (s *store) update(fn func(*State) error) error {
	// 0755: the hosts and resolv.conf files are bind-mounted into
	// unprivileged containers, whose root must be able to reach them.
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("network state dir %s: %w", s.dir, err)
	}
	lk := flock.New(filepath.Join(s.dir, "lock"))
	if err := lk.Lock(); err != nil {
		return fmt.Errorf("lock network state %s: %w", s.dir, err)
	}
	defer func() { _ = lk.Unlock() }()
	st, err := s.load()
	var corrupt *CorruptStateError
	if errors.As(err, &corrupt) {
		st, err = s.recoverCorrupt(corrupt)
	}
	if err != nil {
		return err
	}
	if err := fn(st); err != nil {
		return err
	}
	return s.save(st)
}

// read returns a snapshot of the state under a shared lock. A corrupt state
// needs the exclusive lock to be rebuilt: read then goes through update.
func (s *store) read() (*State, error) {
	lk := flock.New(filepath.Join(s.dir, "lock"))
	// No directory, no state: nothing was attached through it (and update
	// fails for what would need it), so a release has nothing to do.
	if fi, err := os.Stat(s.dir); errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.IsDir()) {
		return newState(), nil
	}
	if err := lk.RLock(); err != nil {
		return nil, fmt.Errorf("lock network state %s: %w", s.dir, err)
	}
	st, err := s.load()
	_ = lk.Unlock()
	var corrupt *CorruptStateError
	if !errors.As(err, &corrupt) {
		return st, err
	}
	err = s.update(func(got *State) error { st = got; return nil })
	return st, err
}

func newState() *State {
	return &State{Bridges: map[string]*Bridge{}, Leases: map[string]*Lease{}}
}

// load reads the state file; a missing one is an empty state, one that is
// not a state stint wrote is a *CorruptStateError.
func (s *store) load() (*State, error) {
	st := newState()
	b, err := os.ReadFile(s.path())
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read network state: %w", err)
	}
	if t := bytes.TrimSpace(b); len(t) == 0 || t[0] != '{' {
		// Empty, null or not an object: nothing stint writes.
		return nil, &CorruptStateError{Path: s.path(), Err: fmt.Errorf("not a JSON object (%s)", plural.N(len(b), "byte", "bytes"))}
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, &CorruptStateError{Path: s.path(), Err: err}
	}
	if st.Bridges == nil {
		st.Bridges = map[string]*Bridge{}
	}
	if st.Leases == nil {
		st.Leases = map[string]*Lease{}
	}
	if err := st.check(); err != nil {
		return nil, &CorruptStateError{Path: s.path(), Err: err}
	}
	return st, nil
}

// check refuses a state that parses but that stint cannot have written and
// would trip over: missing entries, keys that disagree with their entry,
// addresses that are not addresses.
func (st *State) check() error {
	for name, b := range st.Bridges {
		if b == nil {
			return fmt.Errorf("bridge %q: empty entry", name)
		}
		if b.Name != name {
			return fmt.Errorf("bridge %q: entry names bridge %q", name, b.Name)
		}
		if !bridgeNameRE.MatchString(name) {
			return fmt.Errorf("bridge %q: not a bridge name", name)
		}
		p, err := netip.ParsePrefix(b.Subnet)
		if err != nil || !p.Addr().Is4() {
			return fmt.Errorf("bridge %s: subnet %q is not an IPv4 prefix", name, b.Subnet)
		}
		if gw, err := netip.ParseAddr(b.Gateway); err != nil || !p.Contains(gw) {
			return fmt.Errorf("bridge %s: gateway %q is not an address in %s", name, b.Gateway, p)
		}
	}
	for name, l := range st.Leases {
		if l == nil {
			return fmt.Errorf("lease %q: empty entry", name)
		}
		if l.Container != name {
			return fmt.Errorf("lease %q: entry names container %q", name, l.Container)
		}
		if a, err := netip.ParseAddr(l.IPv4); l.IPv4 != "" && (err != nil || !a.Is4()) {
			return fmt.Errorf("lease %s: ipv4 %q is not an IPv4 address", name, l.IPv4)
		}
	}
	for i, r := range st.Reserved {
		if r == nil {
			return fmt.Errorf("reservation %d: empty entry", i)
		}
		if a, err := netip.ParseAddr(r.IPv4); r.IPv4 != "" && (err != nil || !a.Is4()) {
			return fmt.Errorf("reservation %d: ipv4 %q is not an IPv4 address", i, r.IPv4)
		}
	}
	return nil
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
