package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofrs/flock"
	"github.com/google/renameio/v2"
	"github.com/stintdev/stint/internal/hostdir"
	"github.com/stintdev/stint/internal/lazyre"
	"golang.org/x/sys/unix"
)

// Pool directory layout, shared by every driver:
//
//	<pool>/.lock                   flock serialising create/destroy across processes
//	<pool>/volumes/<id>/meta.json  the volume's record (kind, parent, token, created)
//	<pool>/volumes/<id>/rootfs     the directory LXC uses (a subvolume, a mount point, ...)
//	<pool>/volumes/.tmp-<id>-<r>   a volume being created
//	<pool>/volumes/.trash-<id>-<r> a volume being destroyed
//
// Backend objects outside the pool directory (ZFS datasets, LVs) are named
// by the volume's random token, never by its id, so that renaming the
// volume's directory is the one atomic step of a create or destroy.
const (
	volumesDir = "volumes"
	metaFile   = "meta.json"
	rootfsDir  = "rootfs"
	tmpPrefix  = ".tmp-"
	trashPfx   = ".trash-"
)

// validID is the contract's id syntax; a leading dot is reserved for the
// pool's own .tmp-* and .trash-* entries.
var validID = lazyre.New(`^[a-zA-Z0-9_-][a-zA-Z0-9_.-]{0,127}$`)

// meta is a volume's record, kept in meta.json next to its rootfs.
type meta struct {
	ID      string    `json:"id"`
	Kind    Kind      `json:"kind"`
	Parent  string    `json:"parent,omitempty"`
	Token   string    `json:"token"` // names backend objects (datasets, LVs)
	Created time.Time `json:"created"`
	Driver  string    `json:"driver"`
}

// backend is what differs between drivers; pool does the bookkeeping.
type backend interface {
	name() string
	// create makes dir/rootfs an empty writable directory (mounted if
	// the backend mounts) for a new golden volume.
	create(ctx context.Context, dir string, m *meta) error
	// seal makes the filled golden volume at dir read-only.
	seal(ctx context.Context, dir string, m *meta) error
	// clone makes dir/rootfs a writable copy of golden volume pdir.
	clone(ctx context.Context, pdir string, pm *meta, dir string, m *meta) error
	// activate mounts what the volume needs; idempotent.
	activate(ctx context.Context, dir string, m *meta, pdir string) error
	// remove deletes the volume's backend objects; dir is unmounted.
	remove(ctx context.Context, dir string, m *meta) error
	// usage reports the volume's space.
	usage(ctx context.Context, dir string, m *meta) (Usage, error)
	// orphans removes backend objects whose token is not in known.
	orphans(ctx context.Context, known map[string]bool) error
}

// pool implements Driver over a backend.
type pool struct {
	be     backend
	dir    string // the pool directory
	closed atomic.Bool
	// onClose releases what the driver set up (nothing for most).
	onClose func() error
	// held is the pool lock within this process (a semaphore, so that a
	// wait can be cancelled): jobs of one `stint run -j N` queue here and
	// get the lock the moment it is free, instead of polling the flock.
	held chan struct{}
}

func newPool(be backend, dir string) (*pool, error) {
	// Unprivileged containers must traverse to their rootfs: what stint makes
	// is 0711; a pool directory the user made keeps its mode (the CLI names an
	// ancestor that blocks the way: hostdir.CheckReachable).
	if err := hostdir.MkdirAll(filepath.Join(dir, volumesDir), 0o711); err != nil {
		return nil, fmt.Errorf("create storage pool %s: %w", dir, err)
	}
	return &pool{be: be, dir: dir, held: make(chan struct{}, 1)}, nil
}

func (p *pool) Name() string { return p.be.name() }

func (p *pool) vdir(name string) string { return filepath.Join(p.dir, volumesDir, name) }

func (p *pool) check(id string) error {
	if p.closed.Load() {
		return fmt.Errorf("storage pool %s: driver closed", p.dir)
	}
	if !validID.MatchString(id) {
		return fmt.Errorf("volume id %q: must be 1-128 of [a-zA-Z0-9_.-], not starting with a dot", id)
	}
	return nil
}

// lock takes the pool-wide lock (this process's semaphore, then the flock
// that other processes see); the returned func releases it.
func (p *pool) lock(ctx context.Context) (func(), error) {
	select {
	case p.held <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("lock storage pool %s: %w", p.dir, ctx.Err())
	}
	l := flock.New(filepath.Join(p.dir, ".lock"))
	// Another process holds it for a few milliseconds (a clone, a
	// rename): poll at a millisecond, not at the 10 ms a job would lose.
	ok, err := l.TryLockContext(ctx, time.Millisecond)
	if err != nil || !ok {
		<-p.held
		return nil, fmt.Errorf("lock storage pool %s: %w", p.dir, errors.Join(err, ctx.Err()))
	}
	return func() { _ = l.Unlock(); <-p.held }, nil
}

// lockDir flocks a volume directory so that Sweep leaves it alone while a
// create or destroy works on it; closing the file releases the lock.
func lockDir(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func randHex() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func readMeta(dir string) (*meta, error) {
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, err
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, metaFile), err)
	}
	return &m, nil
}

// writeMeta writes m as dir's record: atomically and fsynced when durable,
// else plainly (a temporary volume directory nobody reads until it is
// renamed into place: CloneTransient).
func writeMeta(dir string, m *meta, durable bool) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	p, b := filepath.Join(dir, metaFile), append(b, '\n')
	if !durable {
		return os.WriteFile(p, b, 0o644)
	}
	return renameio.WriteFile(p, b, 0o644)
}

// get reads volume id's record; ErrNotFound if absent, a *CorruptError
// (corrupt.go) if its record is unusable.
func (p *pool) get(id string) (*meta, error) { return p.record(id) }

func (p *pool) exists(id string) (bool, error) {
	_, err := os.Lstat(p.vdir(id))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("volume %q: %w", id, err)
}

func (p *pool) volume(m *meta) Volume {
	return Volume{ID: m.ID, Kind: m.Kind, Parent: m.Parent, Rootfs: filepath.Join(p.vdir(m.ID), rootfsDir), Created: m.Created}
}

// newTmp makes and locks a temporary volume directory holding m, its
// record fsynced unless durable is false (CloneTransient). The caller holds
// the pool lock (see newTmpUnlocked).
func (p *pool) newTmp(m *meta, durable bool) (string, *os.File, error) {
	dir, lk, err := p.mkTmp(m.ID)
	if err != nil {
		return "", nil, err
	}
	return p.tmpRecord(dir, lk, m, durable)
}

// newTmpUnlocked is newTmp for a caller that does not hold the pool lock:
// it takes it only to make and lock the directory. Sweep looks at .tmp-*
// directories under the pool lock and takes one it can lock for a crashed
// create's: it must never find one made and not yet locked.
func (p *pool) newTmpUnlocked(ctx context.Context, m *meta, durable bool) (string, *os.File, error) {
	unlock, err := p.lock(ctx)
	if err != nil {
		return "", nil, err
	}
	dir, lk, err := p.mkTmp(m.ID)
	unlock()
	if err != nil {
		return "", nil, err
	}
	return p.tmpRecord(dir, lk, m, durable)
}

// mkTmp makes a temporary volume directory for volume id and locks it.
func (p *pool) mkTmp(id string) (string, *os.File, error) {
	dir := p.vdir(tmpPrefix + id + "-" + randHex())
	if err := os.Mkdir(dir, 0o711); err != nil {
		return "", nil, fmt.Errorf("volume %q: %w", id, err)
	}
	lk, err := lockDir(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("volume %q: %w", id, err)
	}
	return dir, lk, nil
}

// tmpRecord writes m into the locked temporary volume dir; on failure it
// removes dir.
func (p *pool) tmpRecord(dir string, lk *os.File, m *meta, durable bool) (string, *os.File, error) {
	if err := writeMeta(dir, m, durable); err != nil {
		lk.Close()
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("volume %q: %w", m.ID, err)
	}
	return dir, lk, nil
}

// discard removes a volume directory and its backend objects; it is the
// rollback of a failed create and the end of a destroy.
func (p *pool) discard(ctx context.Context, dir string, m *meta) error {
	if err := unmountAll(dir); err != nil {
		return err
	}
	if m == nil {
		if _, ok := p.be.(tokenNamed); !ok {
			m = &meta{} // the backend finds its objects by dir alone
		}
	}
	if m != nil {
		if err := p.be.remove(ctx, dir, m); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// CreateGolden implements Driver; on a full pool it waits for space being
// freed and tries again, else fails with a *FullError (space.go).
func (p *pool) CreateGolden(ctx context.Context, id string, src Source, opts GoldenOptions) (v Volume, err error) {
	err = p.withSpace(ctx, func() (err error) {
		v, err = p.createGolden(ctx, id, src, opts)
		return err
	})
	return v, err
}

func (p *pool) createGolden(ctx context.Context, id string, src Source, opts GoldenOptions) (_ Volume, err error) {
	if err := p.check(id); err != nil {
		return Volume{}, err
	}
	if ok, err := p.exists(id); err != nil || ok {
		if err == nil {
			err = fmt.Errorf("volume %q: %w", id, ErrExists)
		}
		return Volume{}, err
	}
	m := &meta{ID: id, Kind: KindGolden, Token: randHex(), Created: time.Now().UTC(), Driver: p.be.name()}
	tmp, lk, err := p.newTmp(m, true)
	if err != nil {
		return Volume{}, err
	}
	defer lk.Close()
	defer func() {
		if err != nil {
			if derr := p.discard(context.WithoutCancel(ctx), tmp, m); derr != nil {
				err = fmt.Errorf("%w (and cleaning up %s: %v)", err, tmp, derr)
			}
		}
	}()
	rootfs := filepath.Join(tmp, rootfsDir)
	if err := p.be.create(ctx, tmp, m); err != nil {
		return Volume{}, fmt.Errorf("create golden volume %q: %w", id, err)
	}
	if err := src.Unpack(ctx, rootfs); err != nil {
		return Volume{}, fmt.Errorf("fill golden volume %q: %w", id, err)
	}
	if opts.Shift != nil {
		if err := shiftTree(rootfs, *opts.Shift); err != nil {
			return Volume{}, fmt.Errorf("shift golden volume %q: %w", id, err)
		}
	}
	// Flush the contents before the volume is sealed and renamed into
	// place, so that a crash never leaves a committed but torn golden.
	if err := syncFS(rootfs); err != nil {
		return Volume{}, fmt.Errorf("golden volume %q: %w", id, err)
	}
	if err := p.be.seal(ctx, tmp, m); err != nil {
		return Volume{}, fmt.Errorf("seal golden volume %q: %w", id, err)
	}
	if err := unmountAll(tmp); err != nil {
		return Volume{}, fmt.Errorf("golden volume %q: %w", id, err)
	}
	if err := p.commit(ctx, tmp, id); err != nil {
		return Volume{}, err
	}
	if err := p.be.activate(ctx, p.vdir(id), m, ""); err != nil {
		return Volume{}, fmt.Errorf("mount golden volume %q: %w", id, err)
	}
	return p.volume(m), nil
}

// commit renames a finished temporary volume into place under the pool lock.
func (p *pool) commit(ctx context.Context, tmp, id string) error {
	unlock, err := p.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return p.commitLocked(tmp, id)
}

func (p *pool) commitLocked(tmp, id string) error {
	if ok, err := p.exists(id); err != nil || ok {
		if err == nil {
			err = fmt.Errorf("volume %q: %w", id, ErrExists)
		}
		return err
	}
	if err := os.Rename(tmp, p.vdir(id)); err != nil {
		return fmt.Errorf("volume %q: %w", id, err)
	}
	return nil
}

// Get implements Driver: it mounts the volume again if needed (after a
// reboot, say).
func (p *pool) Get(ctx context.Context, id string) (Volume, error) {
	if err := p.check(id); err != nil {
		return Volume{}, err
	}
	m, err := p.get(id)
	if err != nil {
		return Volume{}, err
	}
	pdir := ""
	if m.Kind == KindClone {
		pm, err := p.get(m.Parent)
		if err != nil {
			return Volume{}, fmt.Errorf("volume %q: golden %w", id, err)
		}
		pdir = p.vdir(m.Parent)
		if err := p.be.activate(ctx, pdir, pm, ""); err != nil {
			return Volume{}, fmt.Errorf("mount golden volume %q: %w", m.Parent, err)
		}
	}
	if err := p.be.activate(ctx, p.vdir(id), m, pdir); err != nil {
		return Volume{}, fmt.Errorf("mount volume %q: %w", id, err)
	}
	return p.volume(m), nil
}

// Destroy implements Driver.
func (p *pool) Destroy(ctx context.Context, id string) error {
	return p.destroy(ctx, id, false)
}

// destroy is Destroy; onlyCorrupt leaves a volume whose record is readable
// (checked under the pool lock) alone: DestroyCorrupt.
func (p *pool) destroy(ctx context.Context, id string, onlyCorrupt bool) error {
	if err := p.check(id); err != nil {
		return err
	}
	unlock, err := p.lock(ctx)
	if err != nil {
		return err
	}
	m, err := p.get(id)
	if errors.Is(err, ErrCorrupt) {
		m = nil // removed by directory alone: removeCorrupt
	} else if err != nil || onlyCorrupt {
		unlock()
		return err
	}
	if m == nil || m.Kind == KindGolden {
		var clones []string
		if err := p.walkAll(func(_ string, c *meta) error {
			if c.Kind == KindClone && c.Parent == id {
				clones = append(clones, c.ID)
			}
			return nil
		}, p.corruptClone(id, &clones)); err != nil {
			unlock()
			return err
		}
		if len(clones) > 0 {
			unlock()
			sort.Strings(clones)
			return fmt.Errorf("destroy golden volume %q: %w: %s", id, ErrInUse, strings.Join(clones, ", "))
		}
	}
	dir := p.vdir(id)
	if err := unmountAll(dir); err != nil {
		unlock()
		return fmt.Errorf("destroy volume %q: %w", id, err)
	}
	trash := p.vdir(trashPfx + id + "-" + randHex())
	if err := os.Rename(dir, trash); err != nil {
		unlock()
		return fmt.Errorf("destroy volume %q: %w", id, err)
	}
	// Past the rename the id is free; the slow delete runs unlocked,
	// with the trash directory flocked so that Sweep leaves it alone.
	lk, lerr := lockDir(trash)
	unlock()
	if lerr != nil {
		return fmt.Errorf("destroy volume %q: lock %s: %w", id, trash, lerr)
	}
	defer lk.Close()
	if m == nil {
		err = p.removeCorrupt(ctx, trash)
	} else {
		err = p.discard(ctx, trash, m)
	}
	if err != nil {
		return fmt.Errorf("destroy volume %q: %w", id, err)
	}
	p.afterDestroy(ctx)
	return nil
}

// walkMeta calls fn for every committed volume's record, skipping the
// corrupt ones (Corrupt lists them).
func (p *pool) walkMeta(fn func(dir string, m *meta) error) error {
	return p.walkAll(fn, nil)
}

// walkAll is walkMeta that hands each corrupt volume to bad (if not nil).
func (p *pool) walkAll(fn func(dir string, m *meta) error, bad func(*CorruptError)) error {
	ents, err := os.ReadDir(p.vdir(""))
	if err != nil {
		return fmt.Errorf("read storage pool %s: %w", p.dir, err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !e.IsDir() {
			continue
		}
		m, err := p.record(e.Name())
		var ce *CorruptError
		switch {
		case errors.Is(err, ErrNotFound):
			continue // renamed away meanwhile
		case errors.As(err, &ce):
			if bad != nil {
				bad(ce)
			}
			continue
		case err != nil:
			return err
		}
		if err := fn(p.vdir(e.Name()), m); err != nil {
			return err
		}
	}
	return nil
}

// Walk implements Driver.
func (p *pool) Walk(ctx context.Context, fn func(Volume) error) error {
	if p.closed.Load() {
		return fmt.Errorf("storage pool %s: driver closed", p.dir)
	}
	var goldens, clones []Volume
	if err := p.walkMeta(func(_ string, m *meta) error {
		if m.Kind == KindGolden {
			goldens = append(goldens, p.volume(m))
		} else {
			clones = append(clones, p.volume(m))
		}
		return nil
	}); err != nil {
		return err
	}
	for _, v := range append(goldens, clones...) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

// Usage implements Driver.
func (p *pool) Usage(ctx context.Context, id string) (Usage, error) {
	if err := p.check(id); err != nil {
		return Usage{}, err
	}
	m, err := p.get(id)
	if err != nil {
		return Usage{}, err
	}
	u, err := p.be.usage(ctx, p.vdir(id), m)
	if err != nil {
		return Usage{}, fmt.Errorf("usage of volume %q: %w", id, err)
	}
	return u, nil
}

// Close implements Driver; mounts stay, as running containers use them.
func (p *pool) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	if p.onClose != nil {
		return p.onClose()
	}
	return nil
}

// noOrphans is the orphans method of backends whose objects all live
// inside volume directories.
type noOrphans struct{}

func (noOrphans) orphans(context.Context, map[string]bool) error { return nil }
