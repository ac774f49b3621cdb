package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Corrupt records: a volume directory whose meta.json is missing, cannot be
// read or does not parse. Get and Usage fail with a *CorruptError, Walk
// skips the volume (Corrupt lists it), and Destroy removes it: what lives in
// the directory goes with it; backend objects named by the lost token (ZFS
// datasets, LVs) become orphans that Destroy then sweeps.

// CorruptError is the error of a volume whose record is corrupt; errors.Is
// matches ErrCorrupt.
type CorruptError struct {
	ID  string // the volume
	Err error  // why its record is unusable
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("volume %q: %v: %v", e.ID, ErrCorrupt, e.Err)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true, and keeps the cause.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// tokenNamed marks backends whose objects live outside the volume
// directory, named by the record's token: without the record, only the
// sweep of orphans may remove them.
type tokenNamed interface{ namedByToken() }

func (zfsBackend) namedByToken() {}
func (lvmBackend) namedByToken() {}

// cloneLayout marks backends whose clones read their golden volume's files
// (overlay's lowerdir) and can be told by their directory: a clone whose
// record is corrupt may belong to any golden, so none may go while it is.
type cloneLayout interface{ looksLikeClone(dir string) bool }

func (overlayBackend) looksLikeClone(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, "upper"))
	return err == nil && st.IsDir()
}

// corruptClone is the walkAll callback of Destroy(id): it adds the corrupt
// volumes that may be clones of id to clones.
func (p *pool) corruptClone(id string, clones *[]string) func(*CorruptError) {
	return func(ce *CorruptError) {
		if cl, ok := p.be.(cloneLayout); ok && ce.ID != id && cl.looksLikeClone(p.vdir(ce.ID)) {
			*clones = append(*clones, ce.ID+" (corrupt record: may be a clone of it)")
		}
	}
}

// record reads committed volume id's record: ErrNotFound if the volume is
// absent, a *CorruptError if its directory has no usable record.
func (p *pool) record(id string) (*meta, error) {
	dir := p.vdir(id)
	m, err := readMeta(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Lstat(dir); errors.Is(serr, fs.ErrNotExist) {
			return nil, fmt.Errorf("volume %q: %w", id, ErrNotFound)
		}
		return nil, &CorruptError{ID: id, Err: fmt.Errorf("%s missing", filepath.Join(dir, metaFile))}
	}
	if err == nil {
		err = checkMeta(m, id)
	}
	if err != nil {
		return nil, &CorruptError{ID: id, Err: err}
	}
	return m, nil
}

// checkMeta tells a record that parsed but cannot be the volume's.
func checkMeta(m *meta, id string) error {
	switch {
	case m.ID != id:
		return fmt.Errorf("record names volume %q", m.ID)
	case m.Kind != KindGolden && m.Kind != KindClone:
		return fmt.Errorf("record has kind %q", m.Kind)
	case m.Token == "":
		return errors.New("record has no token")
	case m.Kind == KindClone && m.Parent == "":
		return errors.New("clone record has no parent")
	}
	return nil
}

// Corrupt lists the volumes of pool d whose record is corrupt, by id; Walk
// skips them. d must come from Open.
func Corrupt(d Driver) ([]*CorruptError, error) {
	p, ok := d.(*pool)
	if !ok {
		return nil, fmt.Errorf("corrupt volumes: %T is not a stint pool", d)
	}
	var out []*CorruptError
	err := p.walkAll(func(string, *meta) error { return nil }, func(ce *CorruptError) {
		out = append(out, ce)
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

// DestroyCorrupt destroys volume id of pool d if its record is corrupt, as
// Destroy does; a volume whose record is readable by then (another process
// made it again) stays, and the answer is nil. d must come from Open.
func DestroyCorrupt(ctx context.Context, d Driver, id string) error {
	p, ok := d.(*pool)
	if !ok {
		return fmt.Errorf("destroy corrupt volume %q: %T is not a stint pool", id, d)
	}
	return p.destroy(ctx, id, true)
}

// removeCorrupt removes the trash directory of a volume without a record;
// with a token-named backend its objects are orphans now, which a sweep
// removes.
func (p *pool) removeCorrupt(ctx context.Context, trash string) error {
	if err := unmountAll(trash); err != nil {
		return err
	}
	if err := p.discard(ctx, trash, nil); err != nil {
		return err
	}
	if _, ok := p.be.(tokenNamed); ok {
		return p.Sweep(ctx)
	}
	return nil
}
