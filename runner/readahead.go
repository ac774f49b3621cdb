package runner

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/internal/rootfs"
)

// readAhead asks the kernel to read files of the container root dir (paths
// inside it) into the page cache, and returns once it has asked. A fresh
// clone's files are cold even when its golden volume's are warm: a btrfs
// or zfs snapshot gives them inodes of their own, and so page-cache pages
// of their own. The job's shell is the first file it runs: read ahead
// while the container starts (on the other core), its first exec finds it
// in memory instead of reading it then (about 0.7 ms of a trivial job's
// exec on btrfs, bench/RESULTS.md).
//
// Best effort, and only what is asked: each path is resolved inside dir
// (never out of it by a link), opened as a path first, and read ahead only
// when it is a regular file (no open of a device or a FIFO an image holds).
func readAhead(dir string, paths []string) {
	root, err := rootfs.OpenRoot(dir)
	if err != nil {
		return
	}
	defer unix.Close(root)
	for _, p := range paths {
		fd, err := rootfs.OpenIn(root, p, unix.O_PATH, 0)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
			// The inode just checked, opened for reading through its
			// descriptor: not a path that could have been swapped since.
			if rd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
				_ = unix.Fadvise(rd, 0, 0, unix.FADV_WILLNEED)
				unix.Close(rd)
			}
		}
		unix.Close(fd)
	}
}

// programFiles are the files program may be in the container: itself when
// it is a path, else where a default PATH finds most programs.
func programFiles(program string) []string {
	switch {
	case program == "":
		return nil
	case strings.Contains(program, "/"):
		return []string{program}
	default:
		return []string{"/usr/bin/" + program, "/bin/" + program}
	}
}
