package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"golang.org/x/sys/unix"
)

// A full pool. Destroying a volume does not always give its space back at
// once: btrfs frees a deleted subvolume's extents only after its cleaner
// thread dropped the tree and a later transaction committed (up to ~30 s
// on its own), and another process's destroy may be under way. So a destroy
// on a pool low on space waits for its space to come back, a clone or golden
// create that meets a full pool waits for space other destroys are freeing
// and retries, and if the pool is really full the error says so and how big
// the pool is (ErrFull, *FullError).

// ErrFull matches (errors.Is) a create that failed because the pool's
// filesystem has no room left; the error is a *FullError.
var ErrFull = errors.New("storage pool is full")

// spaceWait bounds how long a create waits for space destroys are freeing,
// and how long a destroy waits for its own space to come back.
const spaceWait = 30 * time.Second

// Space is the room in the filesystem that holds a pool, or a volume's
// writes, in bytes.
type Space struct {
	Pool string `json:"pool"` // the pool's directory
	Path string `json:"path"` // where the filesystem was asked (a volume's rootfs)
	Size uint64 `json:"size"`
	Free uint64 `json:"free"` // what an unprivileged writer may still use
}

// Full reports whether the space is all but used up: less than 1% of it
// free (at least 1 MiB, at most 64 MiB).
func (s Space) Full() bool {
	limit := min(max(s.Size/100, 1<<20), 64<<20)
	return s.Free < limit
}

// low reports whether less than a tenth of the space is free: a destroy
// then waits for what it freed to come back (a commit of the whole
// filesystem: not worth it on a pool with room to spare).
func (s Space) low() bool { return s.Free < s.Size/10 }

func (s Space) String() string {
	return fmt.Sprintf("%s free of %s", humanize.IBytes(s.Free), humanize.IBytes(s.Size))
}

// FullMessage says that the pool is full and how big it is.
func (s Space) FullMessage() string {
	return fmt.Sprintf("storage pool %s is full: %s", s.Pool, s)
}

// Spacer is an optional Driver ability (found by type assertion): Space
// reports the filesystem that volume id's writes go to, or the pool's own
// for id "", once the space of volumes destroyed before the call is free
// again (btrfs: their cleaner ran). ErrNotFound for an absent volume.
type Spacer interface {
	Space(ctx context.Context, id string) (Space, error)
}

// FullError is a create that failed for want of space in the pool.
type FullError struct {
	Space Space // the pool's, after the last try
	Err   error // the create's own error
}

func (e *FullError) Error() string { return e.Space.FullMessage() + ": " + e.Err.Error() }

// Unwrap makes errors.Is(err, ErrFull) true and keeps the create's error.
func (e *FullError) Unwrap() []error { return []error{ErrFull, e.Err} }

// reclaimer is a backend whose destroys free their space late.
type reclaimer interface {
	// reclaim waits until the space of the volumes destroyed in the pool
	// at dir so far is free again; ctx bounds the wait.
	reclaim(ctx context.Context, dir string) error
}

// statSpace reports the filesystem holding path, in pool.
func statSpace(pool, path string) (Space, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return Space{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := uint64(st.Bsize)
	return Space{Pool: pool, Path: path, Size: st.Blocks * bs, Free: st.Bavail * bs}, nil
}

// Space implements Spacer.
func (p *pool) Space(ctx context.Context, id string) (Space, error) {
	path := p.dir
	if id != "" {
		v, err := p.Get(ctx, id)
		if err != nil {
			return Space{}, err
		}
		path = v.Rootfs
	} else if p.closed.Load() {
		return Space{}, fmt.Errorf("storage pool %s: driver closed", p.dir)
	}
	if r, ok := p.be.(reclaimer); ok {
		wctx, cancel := context.WithTimeout(ctx, spaceWait)
		err := r.reclaim(wctx, p.dir)
		cancel()
		if err != nil {
			return Space{}, fmt.Errorf("storage pool %s: %w", p.dir, err)
		}
	}
	return statSpace(p.dir, path)
}

// afterDestroy runs at the end of a destroy: on a pool low on space, it
// waits until what the destroy freed is usable again, so that the next
// job after the one that filled the pool finds room (best effort: the
// volume is gone either way).
func (p *pool) afterDestroy(ctx context.Context) {
	r, ok := p.be.(reclaimer)
	if !ok {
		return
	}
	if sp, err := statSpace(p.dir, p.dir); err != nil || !sp.low() {
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), spaceWait)
	defer cancel()
	_ = r.reclaim(wctx, p.dir)
}

// noSpace reports whether a create's err is for want of space: ENOSPC, or
// a backend tool's failure (its errno lost in its stderr) on a full pool.
func (p *pool) noSpace(err error) bool {
	switch {
	case err == nil, errors.Is(err, ErrExists), errors.Is(err, ErrNotFound),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.Is(err, unix.ENOSPC):
		return true
	}
	sp, serr := statSpace(p.dir, p.dir)
	return serr == nil && sp.Full()
}

// withSpace runs create; when it fails for want of space, it waits for the
// space that destroys (this process's or another's) are freeing and tries
// again, until a try finds no more space coming or spaceWait passed; then
// the error is a *FullError.
func (p *pool) withSpace(ctx context.Context, create func() error) error {
	err := create()
	deadline := time.Now().Add(spaceWait)
	for p.noSpace(err) {
		if time.Now().After(deadline) || !p.awaitSpace(ctx, deadline) {
			sp, _ := statSpace(p.dir, p.dir)
			sp.Pool = p.dir
			return &FullError{Space: sp, Err: err}
		}
		err = create()
	}
	return err
}

// awaitSpace waits for destroys under way in the pool (their trash
// directories) and for the backend's late frees; it reports whether space
// came back or may have (worth another try).
func (p *pool) awaitSpace(ctx context.Context, deadline time.Time) bool {
	before, err := statSpace(p.dir, p.dir)
	if err != nil {
		return false
	}
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	busy := false
	for p.destroying() {
		busy = true
		select {
		case <-wctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	if r, ok := p.be.(reclaimer); ok {
		if err := r.reclaim(wctx, p.dir); err != nil {
			return false
		}
	}
	after, err := statSpace(p.dir, p.dir)
	return err == nil && (busy || after.Free > before.Free)
}

// destroying reports whether a destroy is under way in the pool: a trash
// directory some process holds locked.
func (p *pool) destroying() bool {
	ents, err := os.ReadDir(p.vdir(""))
	if err != nil {
		return false
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), trashPfx) {
			continue
		}
		lk, err := lockDir(p.vdir(e.Name()))
		if err != nil {
			if errors.Is(err, unix.EWOULDBLOCK) {
				return true
			}
			continue
		}
		lk.Close()
	}
	return false
}
