package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/stintdev/stint/internal/sysexec"
)

// Snapshotter makes a golden volume of what a clone holds now: the commit
// step of a cache (a job's own copy of a cache becomes the cache's next
// generation, which later jobs clone). Every Driver that Open returns
// implements it.
//
// The clone's writers must be stopped: Snapshot reads the clone as it is,
// the way a crash would leave it (btrfs and lvm freeze it for the snapshot,
// the copy reads file by file). The new volume is built under a temporary
// name and renamed into place, as CreateGolden does: a crash leaves no
// half-made volume under id, only an orphan that Sweep removes.
type Snapshotter interface {
	// Snapshot makes golden volume id from the current contents of clone
	// src, which stays as it is; ErrExists if id exists, ErrNotFound if
	// src doesn't. It costs O(1) on btrfs (a read-only snapshot of the
	// clone's subvolume) and lvm (a thin snapshot); zfs, overlay and dir
	// copy the clone's tree (cp -a --reflink=auto): a zfs clone stays tied
	// to its origin's snapshot, so generations made by `zfs clone` would
	// chain forever and no old one could be destroyed.
	Snapshot(ctx context.Context, src, id string) (Volume, error)
}

// snapshotter is a backend that snapshots a clone in O(1); one that isn't
// gets a copy.
type snapshotter interface {
	// snapshot makes dir/rootfs a sealed, read-only golden volume with the
	// current contents of clone sdir.
	snapshot(ctx context.Context, sdir string, sm *meta, dir string, m *meta) error
}

// snapshot: a read-only btrfs snapshot of the clone's subvolume is a sealed
// golden volume (what create + seal make), independent of the clone.
func (btrfsBackend) snapshot(ctx context.Context, sdir string, _ *meta, dir string, _ *meta) error {
	_, err := sysexec.Run(ctx, "btrfs", "subvolume", "snapshot", "-r", filepath.Join(sdir, rootfsDir), filepath.Join(dir, rootfsDir))
	return err
}

// snapshot: a thin snapshot of the clone's LV, as a clone is of its golden
// one; thin snapshots don't depend on their origin, so the clone can go.
// Taking it suspends the device, which freezes the mounted ext4: the
// snapshot holds a clean filesystem that mounts read-only with noload.
func (b lvmBackend) snapshot(ctx context.Context, sdir string, sm *meta, dir string, m *meta) error {
	return b.clone(ctx, sdir, sm, dir, m)
}

// Snapshot implements Snapshotter.
func (p *pool) Snapshot(ctx context.Context, src, id string) (Volume, error) {
	if err := p.check(id); err != nil {
		return Volume{}, err
	}
	if err := p.check(src); err != nil {
		return Volume{}, err
	}
	// Get mounts the clone (an overlay, a zfs dataset, an LV after a reboot).
	sv, err := p.Get(ctx, src)
	if err != nil {
		return Volume{}, fmt.Errorf("snapshot %q: %w", src, err)
	}
	if sv.Kind != KindClone {
		return Volume{}, fmt.Errorf("snapshot %q: volume %q is a golden volume, not a clone", id, src)
	}
	// Flush the clone's data first: the snapshot (or the copy) must see
	// every write the job made, and a crash after the rename must not find
	// a torn volume.
	if err := syncFS(sv.Rootfs); err != nil {
		return Volume{}, fmt.Errorf("snapshot %q of %q: %w", id, src, err)
	}
	sb, ok := p.be.(snapshotter)
	if !ok {
		copyFrom := SourceFunc(func(ctx context.Context, dir string) error {
			// "src/." onto dir: the contents and the top directory's owner
			// and mode, which a shifted container's root needs.
			_, err := sysexec.Run(ctx, "cp", "-a", "--reflink=auto", "--", sv.Rootfs+"/.", dir)
			return err
		})
		v, err := p.CreateGolden(ctx, id, copyFrom, GoldenOptions{})
		if err != nil {
			return Volume{}, fmt.Errorf("snapshot %q of %q: %w", id, src, err)
		}
		return v, nil
	}
	return p.snapshotFast(ctx, sb, src, id)
}

// snapshotFast is Snapshot on a backend that snapshots: under the pool lock
// (the clone can't be destroyed meanwhile, and the step is O(1)), into a
// temporary volume renamed into place.
func (p *pool) snapshotFast(ctx context.Context, sb snapshotter, src, id string) (Volume, error) {
	unlock, err := p.lock(ctx)
	if err != nil {
		return Volume{}, err
	}
	defer unlock()
	sm, err := p.get(src)
	if err != nil {
		return Volume{}, fmt.Errorf("snapshot %q: %w", id, err)
	}
	if ok, err := p.exists(id); err != nil || ok {
		if err == nil {
			err = fmt.Errorf("volume %q: %w", id, ErrExists)
		}
		return Volume{}, err
	}
	m := &meta{ID: id, Kind: KindGolden, Token: randHex(), Created: time.Now().UTC(), Driver: p.be.name()}
	return p.makeLocked(ctx, m, "snapshot", "", func(tmp string) error {
		if err := sb.snapshot(ctx, p.vdir(src), sm, tmp, m); err != nil {
			return fmt.Errorf("snapshot %q of %q: %w", id, src, err)
		}
		return nil
	})
}
