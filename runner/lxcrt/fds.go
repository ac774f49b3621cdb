package lxcrt

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// CloseInheritedFDs marks every descriptor from 3 up close-on-exec. A
// descriptor the caller of stint left open (`exec 9</ ; stint run`) would
// otherwise reach the helper and, through liblxc's attach, the job's
// processes: an open directory of the host is a way out of the container's
// root. stint's main calls it first thing, and so does every helper before
// it hands descriptors on on purpose (stdio, the result pipe).
func CloseInheritedFDs() {
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return
	}
	// Kernels before 5.11 lack CLOSE_RANGE_CLOEXEC: one by one.
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= 3 {
			unix.CloseOnExec(fd)
		}
	}
}
