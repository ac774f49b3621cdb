package images

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/gofrs/flock"
	"github.com/stintdev/stint/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// Temporaries in the store (.tmp-*: imports, packs, builds, pulls, OCI
// unpacks, debootstrap trees) are held by their maker with a flock on a
// descriptor of their own for as long as they are in use, so that Sweep
// can tell one a live process is using from one a kill -9 left behind.

// TempFile creates a temporary file in the store (its name starts with
// prefix, e.g. ".tmp-import-"), held until release is called. The caller
// removes or renames it as before; release never does.
func (s *Store) TempFile(prefix string) (f *os.File, release func(), err error) {
	unlock, err := s.tmpLock(false)
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	f, err = os.CreateTemp(s.dir, prefix)
	if err != nil {
		return nil, nil, err
	}
	release, err = hold(f.Name())
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, nil, err
	}
	return f, release, nil
}

// TempDir is TempFile for a directory.
func (s *Store) TempDir(prefix string) (dir string, release func(), err error) {
	unlock, err := s.tmpLock(false)
	if err != nil {
		return "", nil, err
	}
	defer unlock()
	dir, err = os.MkdirTemp(s.dir, prefix)
	if err != nil {
		return "", nil, err
	}
	release, err = hold(dir)
	if err != nil {
		os.Remove(dir)
		return "", nil, err
	}
	return dir, release, nil
}

// tmpLock takes the store's lock (.lock): shared while a temporary is
// made and held, exclusive while Sweep looks, so that Sweep never sees one
// made but not yet held. (Never called inside withLock: a second flock of
// the same file through another descriptor would wait on the first.)
func (s *Store) tmpLock(exclusive bool) (unlock func(), err error) {
	l := flock.New(s.lock.Path())
	lock := l.RLock
	if exclusive {
		lock = l.Lock
	}
	if err := lock(); err != nil {
		return nil, fmt.Errorf("lock image store %s: %w", s.dir, err)
	}
	return func() { _ = l.Unlock() }, nil
}

// hold takes an exclusive flock on p through a descriptor of its own; the
// lock follows the file through renames and ends when release closes it.
func hold(p string) (release func(), err error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("hold %s: %w", p, err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("hold %s: %w", p, err)
	}
	return func() { unix.Close(fd) }, nil
}

// Sweep removes the temporaries that dead processes left in the store
// (after a kill -9 during an import, pull or build) and returns their
// names. A temporary held by a live process is never touched; a busybox
// build's file (.tmp-build-*, made without a hold) is left while any build
// holds its build lock. Mounts beneath a temporary directory (a
// debootstrap target's /proc) are detached first; one that will not go
// keeps its directory.
func (s *Store) Sweep() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("sweep image store %s: %w", s.dir, err)
	}
	var tmps []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			tmps = append(tmps, e.Name())
		}
	}
	if len(tmps) == 0 {
		return nil, nil
	}
	unlock, err := s.tmpLock(true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Listed before the build locks are tried: a build's file in the list
	// was made by a build that held its lock then.
	building := s.anyBuildHeld()
	var gone []string
	var errs []error
	for _, name := range tmps {
		if building && strings.HasPrefix(name, ".tmp-build-") {
			continue
		}
		p := filepath.Join(s.dir, name)
		release, err := hold(p)
		if err != nil {
			continue // held by a live process, or gone meanwhile
		}
		err = removeTemp(p)
		release()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		gone = append(gone, name)
	}
	return gone, errors.Join(errs...)
}

// anyBuildHeld reports whether a build holds one of the store's build
// locks (.build-*.lock) now.
func (s *Store) anyBuildHeld() bool {
	locks, _ := filepath.Glob(filepath.Join(s.dir, ".build-*.lock"))
	for _, l := range locks {
		fd, err := unix.Open(l, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != nil {
			continue
		}
		err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		unix.Close(fd)
		if err != nil {
			return true
		}
	}
	return false
}

// removeTemp detaches every mount beneath p, deepest first, then removes
// p; it removes nothing while a mount stays.
func removeTemp(p string) error {
	mounts, err := mountinfo.Beneath(filepath.Clean(p))
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sweep %s: unmount %s: %w", p, m, err)
		}
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("sweep %s: %w", p, err)
	}
	return nil
}
