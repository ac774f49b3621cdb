// Package artifact copies a job's artifacts out of its container root onto
// the host without ever following a symlink out of that root, and without
// following a symlink in the destination either.
//
// Reading: the container root is opened once, and every container path is
// resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) relative to
// it, so a symlink in the middle of a path resolves the way it would under
// chroot (an absolute target or a ".." climbs no higher than the root), with
// no check-then-use race. Below that, directories are walked one component at
// a time with O_NOFOLLOW from their file descriptors. The entry a glob matches,
// and every entry met while walking a matched directory, is never
// dereferenced: a symlink is recreated as a symlink with its target text
// verbatim and listed in Result.Links, wherever it points, so nothing from the
// host is ever read. Devices, fifos and sockets are skipped with a reason.
//
// Permissions: for an unprivileged job (Options.IDMap), only
// what the container's root could read in its user namespace is copied: a
// file or directory whose owner or group is outside the id map (a host file
// shown by a bind, sysfs or proc mount) only through its "other" bits, and
// every directory on the way must be searchable the same way. The rest is
// skipped with a reason. Without a map (a privileged job) nothing is checked.
//
// Writing: dest is the job's artifact directory (created if missing), the
// last component of which must not be a symlink: it is made with mkdirat and
// opened with O_NOFOLLOW, as a job writing into a workspace that holds the
// artifacts directory could plant <artifacts>/<job> -> /etc/cron.d. Its
// parent (the --artifacts base) is the user's and may be a symlink.
// Artifact.Dest must be a local relative path (no "..", not absolute). Under
// dest every directory is entered with O_NOFOLLOW, so a symlink planted there
// (say by an earlier artifact) is refused, never written through. Existing
// files and links are replaced. Permission bits are preserved (without
// setuid/setgid); ownership is not: files belong to the invoking user, i.e.
// to SUDO_UID/SUDO_GID when root runs under sudo.
//
// Globs use path.Match syntax per component ("*" also matches a leading dot,
// unlike a shell); there is no "**". Needs Linux 5.6+ for openat2.
package artifact

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/stintdev/stint/internal/idmap"
	"github.com/stintdev/stint/spec"
	"golang.org/x/sys/unix"
)

// Result says what Collect did. Paths are container paths.
type Result struct {
	Copied  []string // regular files and symlinks written under dest
	Skipped []Skip   // patterns that matched nothing, and entries not copied
	Links   []Link   // the symlinks among Copied, with their targets
	Bytes   int64    // bytes of regular file data copied (holes not counted)
	// Sizes are the bytes of data copied per regular file in Copied.
	Sizes map[string]int64
}

// Skip is something Collect did not copy, and why.
type Skip struct {
	Path   string // a container path, or the pattern when nothing matched
	Reason string
}

// Link is a symlink copied as a symlink, never followed.
type Link struct {
	Path   string // container path of the link
	Target string // its target, verbatim
}

// ErrBadDest is returned for an Artifact.Dest that would leave dest.
var ErrBadDest = errors.New("artifact destination escapes the artifact directory")

// ErrDestRefused is returned when the job's artifact directory is a symlink
// or no directory: something (a job writing into a workspace that holds
// it) put it there, and it is not written through.
var ErrDestRefused = errors.New("artifact directory refused")

// MatchedNothing is the Skip reason of a pattern that matched nothing.
const MatchedNothing = "matched nothing"

// maxDepth bounds directory recursion below a match (each level holds two
// descriptors open); a real tree never gets near it. A deeper directory is
// not copied: Skip.Reason says so, and Collect returns ErrTooDeep.
const maxDepth = 256

// ErrTooDeep is returned, after everything else was copied, when a
// directory was deeper than maxDepth below its match: the artifacts are
// incomplete, which a job must not pass silently.
var ErrTooDeep = fmt.Errorf("directory tree deeper than %d levels: not copied", maxDepth)

// Wanted reports whether an artifact with the given `when` is collected
// after a job that failed (or not).
func Wanted(when string, jobFailed bool) bool {
	switch when {
	case spec.WhenAlways:
		return true
	case spec.WhenOnFailure:
		return jobFailed
	default: // "" and on_success
		return !jobFailed
	}
}

// DefaultMaxBytes is the cap on the file data one Collect copies when
// Options.MaxBytes is 0: enough for any sane build output, and a bound on
// what a job can make the host store (a sparse 100 TiB file's holes cost
// nothing, its data would).
const DefaultMaxBytes int64 = 10 << 30

// Options tune Collect.
type Options struct {
	// MaxBytes caps the file data copied (Result.Bytes; holes are free):
	// 0 means DefaultMaxBytes, a negative value no cap. The file that would
	// cross it, and every file after it, is skipped with a reason saying so.
	MaxBytes int64
	// IDMap is the user namespace of an unprivileged job's container: only
	// what its root could read there is copied (see readable). nil means a
	// privileged job, whose root is the host's: no check.
	IDMap *idmap.Map
}

// Collect is CollectWith with the default Options.
func Collect(ctx context.Context, rootfs string, arts []spec.Artifact, dest string, jobFailed bool) (Result, error) {
	return CollectWith(ctx, rootfs, arts, dest, jobFailed, Options{})
}

// CollectWith copies the artifacts of arts whose `when` fits jobFailed from
// the container root rootfs (any host directory: a clone's rootfs, or
// /proc/<pid>/root to see the container's mounts) to dest. Problems with
// single entries are reported in Result.Skipped; an error means the copy
// could not go on (dest unwritable, rootfs unopenable, ctx done), and the
// Result still says what was copied before it.
func CollectWith(ctx context.Context, rootfs string, arts []spec.Artifact, dest string, jobFailed bool, opts Options) (Result, error) {
	return collect(ctx, arts, dest, jobFailed, opts, func() (source, error) {
		fd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open container root %s: %w", rootfs, err)
		}
		return &localSource{root: fd, idmap: opts.IDMap}, nil
	})
}

// collect is Collect over the source that open returns, opened only when
// an artifact is wanted.
func collect(ctx context.Context, arts []spec.Artifact, dest string, jobFailed bool, opts Options, open func() (source, error)) (Result, error) {
	var res Result
	var want []spec.Artifact
	for _, a := range arts {
		if Wanted(a.When, jobFailed) {
			if a.Dest != "" && !filepath.IsLocal(a.Dest) {
				return res, fmt.Errorf("artifact %q: dest %q: %w", a.Path, a.Dest, ErrBadDest)
			}
			want = append(want, a)
		}
	}
	if len(want) == 0 {
		return res, nil
	}
	src, err := open()
	if err != nil {
		return res, err
	}
	defer src.close()
	c := &copier{ctx: ctx, src: src, res: &res, max: opts.MaxBytes, shown: shownPath(dest)}
	if c.max == 0 {
		c.max = DefaultMaxBytes
	}
	c.uid, c.gid, c.chown = invokingUser()
	destFd, err := c.openDest(dest)
	if err != nil {
		return res, err
	}
	defer unix.Close(destFd)
	for _, a := range want {
		if err := c.collect(a, destFd); err != nil {
			return res, err
		}
	}
	if c.tooDeep != "" {
		return res, fmt.Errorf("artifact %s: %w", elide(c.tooDeep), ErrTooDeep)
	}
	return res, nil
}

// elide shortens a long container path for a one-line message (the skip
// entry keeps it whole): its start and its end.
func elide(p string) string {
	if len(p) <= 100 {
		return p
	}
	return p[:40] + "..." + p[len(p)-40:]
}

// shownPath is dest as messages show it. The runner passes its open
// artifacts directory as /proc/self/fd/N/<job> (a path a job can't swap);
// a user knows it by the directory's own path.
func shownPath(dest string) string {
	rest, ok := strings.CutPrefix(dest, "/proc/self/fd/")
	if !ok {
		return dest
	}
	fd, sub, _ := strings.Cut(rest, "/")
	dir, err := os.Readlink("/proc/self/fd/" + fd)
	if err != nil || !filepath.IsAbs(dir) {
		return dest
	}
	return filepath.Join(dir, sub)
}

// invokingUser returns the sudo caller's ids when root runs under sudo.
func invokingUser() (uid, gid int, ok bool) {
	if os.Geteuid() != 0 {
		return 0, 0, false
	}
	u, err1 := strconv.Atoi(os.Getenv("SUDO_UID"))
	g, err2 := strconv.Atoi(os.Getenv("SUDO_GID"))
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return u, g, true
}

// collect copies one artifact's matches into dest/a.Dest; destFd is dest.
func (c *copier) collect(a spec.Artifact, destFd int) error {
	pattern := path.Clean("/" + a.Path)
	if pattern == "/" {
		c.skip(a.Path, "the container root itself is not an artifact")
		return nil
	}
	matches, err := c.glob(pattern)
	if errors.Is(err, errBadPattern) {
		c.skip(a.Path, "bad glob pattern")
		return nil
	}
	if err != nil {
		return err
	}
	if len(matches) == 0 {
		c.skip(a.Path, MatchedNothing)
		return nil
	}
	dirFd, err := c.destDir(destFd, a.Dest)
	if err != nil {
		return err
	}
	defer unix.Close(dirFd)
	c.hostPrefix = filepath.Join(c.shown, a.Dest)
	copied := len(c.res.Copied)
	for _, m := range matches {
		if err := c.copyMatch(m, dirFd); err != nil {
			return err
		}
	}
	if len(c.res.Copied) == copied && !hasMeta(pattern) && c.lastSkip(pattern) == MatchedNothing {
		// A literal path that is not there: the pattern matched nothing.
		c.res.Skipped[len(c.res.Skipped)-1].Path = a.Path
	}
	return nil
}

// openDest opens the job's artifact directory dest, creating it. Its parent
// (the --artifacts base, the user's choice) is created like os.MkdirAll and
// may be a symlink; dest itself is made with mkdirat and opened with
// O_NOFOLLOW: it may sit in a workspace a job writes into (a bind mount
// holding ./artifacts), and a symlink planted there is refused, never
// written through.
func (c *copier) openDest(dest string) (int, error) {
	dest = filepath.Clean(dest)
	shown := c.shown
	base, name := filepath.Dir(dest), filepath.Base(dest)
	if err := c.mkdirAll(base); err != nil {
		return -1, err
	}
	bfd, err := unix.Open(base, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open artifact directory %s: %w", base, err)
	}
	defer unix.Close(bfd)
	fd, err := c.mkdirAt(bfd, name, 0o755)
	if errors.Is(err, errNotDir) {
		var st unix.Stat_t
		if unix.Fstatat(bfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			target, _ := readlinkat(bfd, name)
			return -1, fmt.Errorf("artifact directory %s is a symlink (to %s): refused, not followed: %w", shown, target, ErrDestRefused)
		}
		return -1, fmt.Errorf("artifact directory %s exists and is not a directory: %w", shown, ErrDestRefused)
	}
	if err != nil {
		return -1, fmt.Errorf("artifact directory %s: %w", shown, err)
	}
	return fd, nil
}

// destDir opens dest/sub (destFd is dest), creating each directory of sub
// without following a symlink.
func (c *copier) destDir(destFd int, sub string) (int, error) {
	fd, err := unix.Openat(destFd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open artifact directory %s: %w", c.shown, err)
	}
	for _, comp := range strings.Split(filepath.Clean(sub), "/") {
		if comp == "." || comp == "" {
			continue
		}
		next, err := c.mkdirAt(fd, comp, 0o755)
		unix.Close(fd)
		if err != nil {
			return -1, fmt.Errorf("artifact directory %s: %w", filepath.Join(c.shown, sub), err)
		}
		fd = next
	}
	return fd, nil
}

// mkdirAll is os.MkdirAll that hands each directory it creates to the
// invoking user.
func (c *copier) mkdirAll(dir string) error {
	dir = filepath.Clean(dir)
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := c.mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create artifact directory: %w", err)
	} else if err == nil && c.chown {
		if err := os.Lchown(dir, c.uid, c.gid); err != nil {
			return fmt.Errorf("create artifact directory: %w", err)
		}
	}
	return nil
}
