// Package rootfs opens and makes paths inside a container's root directory
// from the host, safely while the container runs.
//
// Every container path is resolved with openat2(RESOLVE_IN_ROOT |
// RESOLVE_NO_MAGICLINKS) relative to a file descriptor of the root, so a
// symlink resolves the way it would under chroot (an absolute target or a
// ".." climbs no higher than the root) and magic links (/proc/self/root...)
// are refused. Directories are made with mkdirat relative to the descriptor
// of their parent and opened with O_NOFOLLOW: nothing is looked up by a host
// path that a process in the container could swap for a symlink between a
// check and its use. Needs Linux 5.6+ for openat2.
package rootfs

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// OpenRoot opens dir as the root for OpenIn and MkdirAllIn (an O_PATH
// descriptor; close it with unix.Close).
func OpenRoot(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open root %s: %w", dir, err)
	}
	return fd, nil
}

// OpenIn opens the container path p beneath root with flags (O_CLOEXEC is
// added) and mode, every symlink on the way resolved inside root. The last
// component is followed too unless flags hold O_NOFOLLOW. The error is the
// bare errno, for errors.Is.
func OpenIn(root int, p string, flags uint64, mode uint32) (int, error) {
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	for {
		fd, err := unix.Openat2(root, rel, &unix.OpenHow{
			Flags:   flags | unix.O_CLOEXEC,
			Mode:    uint64(mode),
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		})
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue // a concurrent rename inside the root: just retry
		}
		return fd, err
	}
}

// ErrNotDir is a path component that is not a directory where MkdirAllIn
// needs one: a file, or a symlink it may not follow (one whose target does
// not exist inside the root).
var ErrNotDir = errors.New("not a directory (symlinks are not followed out of the root)")

// MkdirAllIn makes the container directory p and its missing parents beneath
// root with perm (before umask), and returns a descriptor of p opened
// O_RDONLY|O_DIRECTORY. Existing components are resolved inside root, as
// OpenIn does; each missing one is made with mkdirat in its parent's
// descriptor and opened without following a symlink. made, if not nil, is
// called with the descriptor of every directory made (to chown it).
func MkdirAllIn(root int, p string, perm uint32, made func(fd int) error) (int, error) {
	if fd, err := OpenIn(root, p, unix.O_RDONLY|unix.O_DIRECTORY, 0); err == nil {
		return fd, nil
	}
	cur, err := OpenIn(root, ".", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, fmt.Errorf("open root: %w", err)
	}
	prefix := "/"
	for _, comp := range strings.Split(strings.TrimPrefix(path.Clean("/"+p), "/"), "/") {
		if comp == "" {
			continue
		}
		prefix = path.Join(prefix, comp)
		next, err := OpenIn(root, prefix, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if errors.Is(err, unix.ENOENT) {
			next, err = mkdirAt(cur, comp, perm, made)
		}
		unix.Close(cur)
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			err = ErrNotDir
		}
		if err != nil {
			return -1, fmt.Errorf("directory %s: %w", prefix, err)
		}
		cur = next
	}
	return cur, nil
}

// mkdirAt makes dir/name (or finds it made by someone else meanwhile) and
// opens it without following a symlink.
func mkdirAt(dir int, name string, perm uint32, made func(fd int) error) (int, error) {
	err := unix.Mkdirat(dir, name, perm)
	created := err == nil
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, err
	}
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if created && made != nil {
		if err := made(fd); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}
