package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Record kinds.
const (
	KindJob       = "job"       // an ephemeral job from `stint run`
	KindExec      = "exec"      // an ad hoc ephemeral container from `stint exec`
	KindContainer = "container" // a long-lived container owned by its spec set (apply/watch)
)

// Phase is where a recorded container is in its life, as stint last wrote
// it (the runtime's State says what it really is).
type Phase string

// Phases.
const (
	PhaseCreating Phase = "creating" // the record exists, its resources are being made
	PhaseRunning  Phase = "running"  // started
	PhaseStopped  Phase = "stopped"  // a long-lived container, defined and stopped
	PhaseKept     Phase = "kept"     // a failed job's container, kept for inspection
)

// PhaseCorrupt is the Phase of a record whose file could not be parsed; only
// its Name is known.
const PhaseCorrupt Phase = "corrupt"

// Sentinel errors, checked with errors.Is.
var (
	ErrExists   = errors.New("state record already exists")
	ErrNotFound = errors.New("state record not found")
	ErrBusy     = errors.New("state record is held by a live process")
	ErrClosed   = errors.New("state handle already released or deleted")
	ErrBadName  = errors.New("invalid state record name")
)

// Record is the journal entry for one container stint owns.
type Record struct {
	Name     string          `json:"name"` // the LXC container name, also the record's key
	Kind     string          `json:"kind"` // KindJob | KindExec | KindContainer
	Set      string          `json:"set,omitempty"`
	Job      string          `json:"job,omitempty"`
	SpecHash string          `json:"spec_hash,omitempty"`
	Image    string          `json:"image,omitempty"`    // image fingerprint
	Driver   string          `json:"driver,omitempty"`   // storage driver name
	Volume   string          `json:"volume,omitempty"`   // clone volume id
	Caches   []string        `json:"caches,omitempty"`   // volume ids of its own copies of cache volumes
	Mounts   []string        `json:"mounts,omitempty"`   // host paths stint mounted for it, innermost last
	Network  json.RawMessage `json:"network,omitempty"`  // the network lease, opaque here
	NetMode  string          `json:"net_mode,omitempty"` // the network mode asked for at Create ("": unknown)
	Phase    Phase           `json:"phase,omitempty"`    // where the container is in its life
	Kept     bool            `json:"kept,omitempty"`     // --keep-on-failure kept it for inspection
	Created  time.Time       `json:"created"`
	Owner    int             `json:"owner,omitempty"`  // pid of the owning stint process while it lives
	Remote   string          `json:"remote,omitempty"` // the lxd remote running it; "" is local
}

// clone returns a deep copy, so a mutator cannot alias a handle's record.
func (r Record) clone() Record {
	r.Mounts = slices.Clone(r.Mounts)
	r.Caches = slices.Clone(r.Caches)
	r.Network = slices.Clone(r.Network)
	return r
}

// durableChange reports whether b differs from a in a field naming something
// that survives a reboot (see the package doc: those writes are fsynced).
func durableChange(a, b Record) bool {
	return a.Kind != b.Kind || a.Set != b.Set || a.Job != b.Job || a.SpecHash != b.SpecHash ||
		a.Image != b.Image || a.Driver != b.Driver || a.Volume != b.Volume || a.Kept != b.Kept ||
		!slices.Equal(a.Caches, b.Caches)
}

// Stats counts the store's disk writes since Open, for benchmarks.
type Stats struct {
	Writes int64 // record files written (each a temp file renamed into place)
	Syncs  int64 // fsync calls, on files and on the directory
}

// Store is the state directory. It is safe for concurrent use, and several
// processes may open the same directory.
type Store struct {
	dir    string
	writes atomic.Int64
	syncs  atomic.Int64
}

// Open opens (creating it if needed) the state directory dir, normally
// <--root>/state.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open state directory %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Dir returns the state directory.
func (s *Store) Dir() string { return s.dir }

// Stats returns the write and fsync counts since Open.
func (s *Store) Stats() Stats {
	return Stats{Writes: s.writes.Load(), Syncs: s.syncs.Load()}
}

func (s *Store) recordPath(name string) string { return filepath.Join(s.dir, name+".json") }
func (s *Store) lockPath(name string) string   { return filepath.Join(s.dir, name+".lock") }
func (s *Store) tempPath(name string) string   { return filepath.Join(s.dir, "."+name+".json.tmp") }

// validName rejects names that would escape the directory or collide with
// the temp files; LXC names are far stricter anyway.
func validName(name string) error {
	switch {
	case name == "", strings.HasPrefix(name, "."), strings.ContainsAny(name, "/\x00"), len(name) > 200:
		return fmt.Errorf("%w: %q", ErrBadName, name)
	}
	return nil
}

// Create journals r durably and takes its lock, before the caller creates any
// resource for it. r.Created and r.Owner default to now and this process.
// It fails with ErrExists if a record of that name exists, owned or not
// (an orphan must be removed by gc first).
func (s *Store) Create(r *Record) (*Handle, error) { return s.create(r, true) }

// CreateOrdered is Create without its two fsyncs, for a record whose every
// resource the caller makes afterwards on the state directory's own
// filesystem: that filesystem persists the record's name no later than
// them (see "Durability and fsync" in the package doc), so a power cut
// never leaves one of them without it. The caller checks the filesystems.
func (s *Store) CreateOrdered(r *Record) (*Handle, error) { return s.create(r, false) }

func (s *Store) create(r *Record, durable bool) (*Handle, error) {
	if err := validName(r.Name); err != nil {
		return nil, err
	}
	lk, err := s.lock(r.Name, true)
	if errors.Is(err, ErrBusy) {
		return nil, fmt.Errorf("create state record %q: %w", r.Name, ErrExists)
	}
	if err != nil {
		return nil, fmt.Errorf("create state record %q: %w", r.Name, err)
	}
	if _, err := os.Lstat(s.recordPath(r.Name)); err == nil {
		_ = unlock(lk)
		return nil, fmt.Errorf("create state record %q: %w", r.Name, ErrExists)
	} else if !errors.Is(err, os.ErrNotExist) {
		_ = unlock(lk)
		return nil, fmt.Errorf("create state record %q: %w", r.Name, err)
	}
	if r.Created.IsZero() {
		r.Created = time.Now().UTC()
	}
	if r.Owner == 0 {
		r.Owner = os.Getpid()
	}
	rec := r.clone()
	if err := s.write(rec, durable); err != nil {
		os.Remove(s.lockPath(r.Name)) // still held: nobody else can be using it
		_ = unlock(lk)
		return nil, fmt.Errorf("create state record %q: %w", r.Name, err)
	}
	return &Handle{s: s, lock: lk, rec: rec}, nil
}

// Get reads one record. A record that cannot be parsed is returned as
// Record{Name, Phase: PhaseCorrupt} without error (see the package doc).
func (s *Store) Get(name string) (Record, error) {
	if err := validName(name); err != nil {
		return Record{}, err
	}
	b, err := os.ReadFile(s.recordPath(name))
	if errors.Is(err, os.ErrNotExist) {
		return Record{}, fmt.Errorf("state record %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Record{}, fmt.Errorf("read state record %q: %w", name, err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil || r.Name != name {
		return Record{Name: name, Phase: PhaseCorrupt}, nil
	}
	return r, nil
}

// List returns every record, sorted by name.
func (s *Store) List() ([]Record, error) {
	names, err := s.names()
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(names))
	for _, n := range names {
		r, err := s.Get(n)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since we read the directory
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// names lists the record names in the directory, sorted.
func (s *Store) names() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list state directory %s: %w", s.dir, err)
	}
	var names []string
	for _, e := range ents {
		n, ok := strings.CutSuffix(e.Name(), ".json")
		if ok && e.Type().IsRegular() && validName(n) == nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// Claim takes over the record name from an owner that is gone: for gc and
// for the reconciler. It fails with ErrBusy if a live process holds it, and
// with ErrNotFound if there is no such record. Owner becomes this process.
func (s *Store) Claim(name string) (*Handle, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(s.recordPath(name)); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("claim state record %q: %w", name, ErrNotFound)
	}
	// Create the lock file if it is missing: a crash in Delete can leave a
	// record without one only if someone removed it by hand, but be lenient.
	lk, err := s.lock(name, true)
	if err != nil {
		return nil, fmt.Errorf("claim state record %q: %w", name, err)
	}
	// The owner may have deleted the record between our check and the lock.
	r, err := s.Get(name)
	if err != nil {
		_ = unlock(lk)
		return nil, fmt.Errorf("claim state record %q: %w", name, err)
	}
	h := &Handle{s: s, lock: lk, rec: r}
	if r.Phase != PhaseCorrupt {
		if err := h.Update(func(r *Record) { r.Owner = os.Getpid() }); err != nil {
			_ = unlock(lk)
			return nil, fmt.Errorf("claim state record %q: %w", name, err)
		}
	}
	return h, nil
}

// Orphans returns the records whose owner is gone and that nobody asked to
// keep: not Kept, and not KindContainer (long-lived containers are owned by
// their spec set, not by a process). A corrupt record is an orphan when its
// lock is free. Probing a lock takes it for an instant, so a concurrent Claim
// of the same name may see ErrBusy.
func (s *Store) Orphans() ([]Record, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, r := range all {
		if r.Kept || r.Kind == KindContainer {
			continue
		}
		free, err := s.lockFree(r.Name)
		if err != nil {
			return nil, err
		}
		if free {
			out = append(out, r)
		}
	}
	return out, nil
}

// lockFree reports whether nobody holds name's lock.
func (s *Store) lockFree(name string) (bool, error) {
	lk, err := s.lock(name, false)
	switch {
	case errors.Is(err, ErrBusy):
		return false, nil
	case errors.Is(err, os.ErrNotExist):
		return true, nil // no lock file: nobody can hold it
	case err != nil:
		return false, fmt.Errorf("probe lock of state record %q: %w", name, err)
	}
	_ = unlock(lk)
	return true, nil
}

// Sweep removes what a crash can leave besides records: lock files and
// temporary files of names that have no record, when nobody holds the lock.
func (s *Store) Sweep() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("sweep state directory %s: %w", s.dir, err)
	}
	seen := map[string]bool{}
	for _, e := range ents {
		n := e.Name()
		if m, ok := strings.CutSuffix(n, ".lock"); ok {
			seen[m] = true
		} else if m, ok := strings.CutSuffix(n, ".json.tmp"); ok && strings.HasPrefix(m, ".") {
			seen[m[1:]] = true
		}
	}
	var errs []error
	for n := range seen {
		if validName(n) != nil {
			continue
		}
		// A live record leaves nothing to sweep but a temp file a crashed
		// write left: don't probe its lock otherwise (a Claim beside us
		// would find it busy), nor for a temp file a writer may still own.
		if s.liveRecord(n) {
			continue
		}
		lk, err := s.lock(n, true)
		if errors.Is(err, ErrBusy) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := os.Lstat(s.recordPath(n)); errors.Is(err, os.ErrNotExist) {
			// Remove while holding the lock, as Delete does.
			for _, p := range []string{s.tempPath(n), s.lockPath(n)} {
				if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
			}
		} else if err == nil {
			if err := os.Remove(s.tempPath(n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		_ = unlock(lk)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sweep state directory %s: %w", s.dir, err)
	}
	return nil
}

// staleTemp is how old a record's temp file must be to be a crash's: a
// writer renames its own away at once.
const staleTemp = time.Minute

// liveRecord reports whether name has a record and no temp file a crashed
// write left (none, or one younger than staleTemp).
func (s *Store) liveRecord(name string) bool {
	if _, err := os.Lstat(s.recordPath(name)); err != nil {
		return false
	}
	fi, err := os.Lstat(s.tempPath(name))
	return err != nil || time.Since(fi.ModTime()) < staleTemp
}

// Handle is the held lock on one record. Its methods are safe for concurrent
// use; after Delete or Release they return ErrClosed.
type Handle struct {
	s    *Store
	mu   sync.Mutex
	lock *os.File // nil once closed
	rec  Record
}

// Name returns the record's name.
func (h *Handle) Name() string { return h.rec.Name }

// Record returns a copy of the record as last written.
func (h *Handle) Record() Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rec.clone()
}

// Update applies mut to a copy of the record and rewrites it atomically. The
// name cannot change. It fsyncs only when a field that survives a reboot
// changed (see the package doc).
func (h *Handle) Update(mut func(*Record)) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lock == nil {
		return fmt.Errorf("update state record %q: %w", h.rec.Name, ErrClosed)
	}
	next := h.rec.clone()
	mut(&next)
	if next.Name != h.rec.Name {
		return fmt.Errorf("update state record %q: name cannot change to %q", h.rec.Name, next.Name)
	}
	if err := h.s.write(next, durableChange(h.rec, next)); err != nil {
		return fmt.Errorf("update state record %q: %w", h.rec.Name, err)
	}
	h.rec = next
	return nil
}

// Delete removes the record and its lock file, at the end of a clean
// teardown, and unlocks.
func (h *Handle) Delete() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lock == nil {
		return fmt.Errorf("delete state record %q: %w", h.rec.Name, ErrClosed)
	}
	// Record first: a crash between the two leaves a lock file without a
	// record, which is harmless and which Sweep removes.
	var errs []error
	for _, p := range []string{h.s.recordPath(h.rec.Name), h.s.tempPath(h.rec.Name), h.s.lockPath(h.rec.Name)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, unlock(h.lock))
	h.lock = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete state record %q: %w", h.rec.Name, err)
	}
	return nil
}

// Release keeps the record (a kept or long-lived container), clears its
// Owner and unlocks. The lock file stays, so the name stays taken.
func (h *Handle) Release() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lock == nil {
		return fmt.Errorf("release state record %q: %w", h.rec.Name, ErrClosed)
	}
	var err error
	if h.rec.Owner != 0 && h.rec.Phase != PhaseCorrupt {
		next := h.rec.clone()
		next.Owner = 0
		if err = h.s.write(next, false); err == nil {
			h.rec = next
		}
	}
	err = errors.Join(err, unlock(h.lock))
	h.lock = nil
	if err != nil {
		return fmt.Errorf("release state record %q: %w", h.rec.Name, err)
	}
	return nil
}
