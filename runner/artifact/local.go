package artifact

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/internal/idmap"
	"github.com/stintdev/stint/internal/rootfs"
)

// localSource reads a container root on this host through descriptors:
// paths are resolved inside the root (openat2 RESOLVE_IN_ROOT), entries
// below them one component at a time with O_NOFOLLOW.
type localSource struct {
	root  int        // O_PATH fd of the container root
	idmap *idmap.Map // an unprivileged container's map; nil: privileged
}

func (s *localSource) close() { unix.Close(s.root) }

// openInRoot opens a container path with every symlink resolved inside the
// root, as under chroot.
func (s *localSource) openInRoot(p string, flags uint64) (int, error) {
	return rootfs.OpenIn(s.root, p, flags, 0)
}

// list lists the container directory p, if the container could.
func (s *localSource) list(p string) ([]string, error) {
	if r := s.unsearchable(path.Dir(p)); r != "" {
		return nil, skipError(r)
	}
	fd, err := s.openInRoot(p, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if r := s.denied(&st, 0o5); r != "" {
		return nil, skipError("not readable by the container (" + r + ")")
	}
	names, err := f.Readdirnames(-1)
	slices.Sort(names)
	return names, err
}

func (s *localSource) dir(p string) (srcDir, error) {
	if r := s.unsearchable(p); r != "" {
		return nil, skipError(r)
	}
	fd, err := s.openInRoot(p, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	return &localDir{s: s, fd: fd}, nil
}

// denied says why an unprivileged container's root could not access an
// inode with st the way that needs the "other" permission bits in other
// (0o4: read a file, 0o5: list a directory, 0o1: search one), or "" if it
// could. In its user namespace root has CAP_DAC_OVERRIDE (and
// CAP_DAC_READ_SEARCH) only over inodes whose owner and group are both
// mapped; on any other inode (the host's files, through a bind mount or a
// sysfs or proc mount) only the "other" bits apply to it. With no map (a
// privileged job: its root is the host's) everything is allowed.
func (s *localSource) denied(st *unix.Stat_t, other uint32) string {
	m := s.idmap
	if m == nil {
		return ""
	}
	uidOK := st.Uid >= m.HostUID && st.Uid-m.HostUID < m.Size
	gidOK := st.Gid >= m.HostGID && st.Gid-m.HostGID < m.Size
	if uidOK && gidOK || st.Mode&other == other {
		return ""
	}
	if !uidOK {
		return fmt.Sprintf("owner uid %d outside its id map", st.Uid)
	}
	return fmt.Sprintf("group gid %d outside its id map", st.Gid)
}

// unsearchable says which directory on the way to the container directory
// dir (dir included) the container could not search, and why; "" if none
// (or if one is missing or no directory: whoever opens it says so). Each
// prefix is resolved inside the root as the full path would be.
func (s *localSource) unsearchable(dir string) string {
	if s.idmap == nil {
		return ""
	}
	p := "/"
	for _, comp := range append([]string{""}, strings.Split(strings.Trim(path.Clean("/"+dir), "/"), "/")...) {
		p = path.Join(p, comp)
		fd, err := s.openInRoot(p, unix.O_PATH)
		if err != nil {
			return ""
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		if err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return ""
		}
		if r := s.denied(&st, 0o1); r != "" {
			return fmt.Sprintf("%s is not searchable by the container (%s)", p, r)
		}
	}
	return ""
}

// localDir is an open directory of a localSource.
type localDir struct {
	s    *localSource
	fd   int
	f    *os.File // owns fd when set (a directory that was listed)
	mode uint32
}

func (d *localDir) close() {
	if d.f != nil {
		d.f.Close()
		return
	}
	unix.Close(d.fd)
}
func (d *localDir) perm() uint32 { return d.mode }

func (d *localDir) lstat(name string) (fs.FileMode, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return 0, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return 0, nil
	case unix.S_IFLNK:
		return fs.ModeSymlink, nil
	case unix.S_IFDIR:
		return fs.ModeDir, nil
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice, nil
	case unix.S_IFBLK:
		return fs.ModeDevice, nil
	case unix.S_IFIFO:
		return fs.ModeNamedPipe, nil
	case unix.S_IFSOCK:
		return fs.ModeSocket, nil
	}
	return fs.ModeIrregular, nil
}

func (d *localDir) readLink(name string) (string, error) { return readlinkat(d.fd, name) }

func readlinkat(dir int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dir, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

func (d *localDir) open(name string) (srcFile, error) {
	// O_NOFOLLOW and O_NONBLOCK: if the entry was swapped for a link or a
	// fifo since the lstat, fail or don't hang; fstat below re-checks.
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := &localFile{fd: fd, f: os.NewFile(uintptr(fd), name)}
	if err := unix.Fstat(fd, &f.st); err != nil || f.st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.close()
		return nil, skipError("changed while being copied: not copied")
	}
	if r := d.s.denied(&f.st, 0o4); r != "" {
		f.close()
		return nil, skipError("not readable by the container (" + r + ")")
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err == nil {
		f.synthetic = syntheticFS[int64(sfs.Type)]
	}
	return f, nil
}

func (d *localDir) sub(name string) (srcDir, []string, error) {
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open directory: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat directory: %w", err)
	}
	if r := d.s.denied(&st, 0o5); r != "" {
		f.Close()
		return nil, nil, skipError("not readable by the container (" + r + ")")
	}
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("read directory: %w", err)
	}
	slices.Sort(names)
	return &localDir{s: d.s, fd: fd, f: f, mode: st.Mode}, names, nil
}

// syntheticFS are the file systems whose files' sizes say nothing about
// what reading them gives (/proc's are 0 bytes, /sys's 4096): their files
// are read until EOF, not by their size and holes.
var syntheticFS = map[int64]bool{
	unix.PROC_SUPER_MAGIC: true, unix.SYSFS_MAGIC: true, unix.DEBUGFS_MAGIC: true,
	unix.TRACEFS_MAGIC: true, unix.SECURITYFS_MAGIC: true, unix.CGROUP_SUPER_MAGIC: true,
	unix.CGROUP2_SUPER_MAGIC: true, unix.FUSE_SUPER_MAGIC: true, // lxcfs shows 0-byte /proc files
	unix.BPF_FS_MAGIC: true, unix.EFIVARFS_MAGIC: true,
}

// localFile is an open regular file of a localSource.
type localFile struct {
	fd        int
	f         *os.File
	st        unix.Stat_t
	synthetic bool // on a syntheticFS
}

func (f *localFile) close()       { f.f.Close() }
func (f *localFile) perm() uint32 { return f.st.Mode }

// copyTo copies the file's data. A file of a synthetic file system, or one
// that says it is empty, is read until EOF (a /proc file's real content);
// any other by its size and holes (copySparse), so a sparse file costs the
// host what it costs the container.
func (f *localFile) copyTo(c *copier, dst *os.File) (int64, error) {
	if f.synthetic || f.st.Size == 0 {
		return c.copyStream(dst, f.f)
	}
	return f.copySparse(c, dst)
}

// copySparse copies the first st.Size bytes of the file to dst, data only:
// holes (found with SEEK_DATA/SEEK_HOLE) stay holes. It returns the data
// bytes copied, or errCap before copying data beyond the cap.
func (f *localFile) copySparse(c *copier, dst *os.File) (int64, error) {
	var n int64
	size := f.st.Size
	for off := int64(0); off < size; {
		data, err := unix.Seek(f.fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			return n, fmt.Errorf("%w: %w", errRead, err)
		}
		if data >= size {
			break
		}
		hole, err := unix.Seek(f.fd, data, unix.SEEK_HOLE)
		if err != nil {
			return n, fmt.Errorf("%w: %w", errRead, err)
		}
		hole = min(hole, size) // the file may have grown meanwhile
		if c.max >= 0 && c.res.Bytes+n+hole-data > c.max {
			return n, errCap
		}
		w, err := io.Copy(io.NewOffsetWriter(dst, data), ctxReader{c.ctx, io.NewSectionReader(f.f, data, hole-data)})
		n += w
		if err != nil {
			return n, err
		}
		off = hole
	}
	// The trailing hole, and the length.
	return n, dst.Truncate(size)
}
