// Package storage keeps stint's root filesystems: one read-only golden volume
// per image (and idmap), and one cheap writable clone of it per container.
//
// # Lifecycle
//
// A Driver is opened once per process for a pool (a directory under --root,
// a btrfs filesystem, a ZFS dataset or an LVM thin pool).
//
//  1. CreateGolden makes the golden volume for an image: the driver prepares
//     an empty directory, the Source fills it (unpacking the image's rootfs),
//     the driver shifts every owner into the given idmap when one is asked
//     for, and seals the volume (read-only subvolume, ZFS snapshot, ...). It
//     is built under a temporary name and renamed into place, so a crash
//     leaves either nothing or an orphan that Sweep removes. Done once per
//     image and idmap, never per job.
//  2. Clone makes a writable volume from a golden one: a copy-on-write
//     snapshot on btrfs, zfs and lvm, an overlay mount on overlay, a copy on
//     dir. The Volume's Rootfs is a plain directory, already mounted, that
//     LXC uses as `lxc.rootfs.path = dir:<Rootfs>`.
//  3. Destroy removes a clone, or a golden volume that has no clones
//     (ErrInUse otherwise). It renames first, so that an interrupted destroy
//     leaves a recognisable orphan, never a half-deleted volume under its
//     real name; Sweep finishes such work.
//  4. Walk lists every volume; Usage reports the bytes a volume uses.
//  5. Close releases the driver's resources; closing twice is harmless.
//
// Volume ids are chosen by the caller ([a-zA-Z0-9_.-], at most 128 bytes,
// not starting with a dot, which is reserved for the pool's own entries);
// golden and clone ids share one namespace.
package storage

import (
	"context"
	"errors"
	"time"

	"github.com/stintdev/stint/internal/idmap"
)

// Sentinel errors, checked with errors.Is.
var (
	ErrNotFound    = errors.New("volume not found")
	ErrExists      = errors.New("volume already exists")
	ErrInUse       = errors.New("volume has clones")
	ErrUnsupported = errors.New("storage driver unsupported on this host")
	// ErrCorrupt: a volume's record (meta.json) is missing, unreadable or
	// garbled; the error is a *CorruptError naming the volume.
	ErrCorrupt = errors.New("volume record corrupt")
)

// Kind tells golden volumes from clones.
type Kind string

// Volume kinds.
const (
	KindGolden Kind = "golden"
	KindClone  Kind = "clone"
)

// Source fills an empty directory with a root filesystem.
type Source interface {
	Unpack(ctx context.Context, dir string) error
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context, dir string) error

// Unpack calls f.
func (f SourceFunc) Unpack(ctx context.Context, dir string) error { return f(ctx, dir) }

// GoldenOptions tune CreateGolden.
type GoldenOptions struct {
	// Shift, when set, shifts every file's owner from container ids to host
	// ids of the map (0 → HostUID, ...) after the Source ran, so that
	// unprivileged containers can use clones without a chown per job.
	Shift *idmap.Map
}

// Volume is a golden volume or a clone.
type Volume struct {
	ID      string    `json:"id"`
	Kind    Kind      `json:"kind"`
	Parent  string    `json:"parent,omitempty"` // a clone's golden volume
	Rootfs  string    `json:"rootfs"`           // a directory ready for LXC; read-only for a golden
	Created time.Time `json:"created"`
}

// Usage is what a volume takes on disk.
type Usage struct {
	// Bytes the volume uses on its own: for a clone, what it wrote beyond
	// its golden volume where the driver can tell (btrfs, zfs, lvm, overlay).
	Bytes int64 `json:"bytes"`
	// Inodes, when the driver counts them (dir, overlay); else 0.
	Inodes int64 `json:"inodes"`
}

// TransientCloner is a Driver that can make a clone without the fsync of
// its record (meta.json), for a clone that need not be found again as a
// volume after a power cut: a job's, which its journal record names and
// teardown destroys by that name, a clone whose record was torn included
// (Destroy removes a corrupt volume by its directory). The pool's drivers
// all have it.
type TransientCloner interface {
	CloneTransient(ctx context.Context, parent, id string) (Volume, error)
}

// Driver is one storage backend. Implementations are safe for use by
// several goroutines and several processes sharing one pool.
type Driver interface {
	// Name is the driver's name: dir, overlay, btrfs, zfs or lvm.
	Name() string
	// CreateGolden builds golden volume id from src; ErrExists if it exists.
	CreateGolden(ctx context.Context, id string, src Source, opts GoldenOptions) (Volume, error)
	// Clone makes writable volume id from golden volume parent.
	Clone(ctx context.Context, parent, id string) (Volume, error)
	// Get returns volume id (golden or clone), mounted; ErrNotFound if absent.
	Get(ctx context.Context, id string) (Volume, error)
	// Destroy removes volume id; ErrInUse for a golden volume with clones,
	// ErrNotFound if absent.
	Destroy(ctx context.Context, id string) error
	// Walk calls fn for every volume, goldens first.
	Walk(ctx context.Context, fn func(Volume) error) error
	// Usage reports the space volume id uses.
	Usage(ctx context.Context, id string) (Usage, error)
	// Sweep removes orphans that crashed creates and destroys left behind.
	Sweep(ctx context.Context) error
	// Close releases the driver; a second Close returns nil.
	Close() error
}

// Config selects and configures a driver; it mirrors the spec's [storage].
type Config struct {
	Driver   string // auto | btrfs | zfs | lvm | overlay | dir
	Root     string // stint's --root; pools live under Root/storage unless Path is set
	Path     string // btrfs, overlay, dir: the pool directory
	Size     int64  // btrfs: make and mount a loop-file pool of this many bytes
	Dataset  string // zfs
	VG       string // lvm
	Thinpool string // lvm
}
