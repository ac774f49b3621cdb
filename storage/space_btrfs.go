package storage

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/stintdev/stint/internal/sysexec"
	"golang.org/x/sys/unix"
)

// btrfsIocSync is BTRFS_IOC_SYNC, _IO(0x94, 8): `btrfs filesystem sync`.
const btrfsIocSync = 0x9408

// reclaim implements reclaimer. A deleted subvolume's space comes back in
// three steps that btrfs otherwise spreads over its 30 s commit interval:
// the transaction holding the delete commits (and BTRFS_IOC_SYNC wakes the
// cleaner), the cleaner drops the subvolume's tree (`btrfs subvolume sync`),
// and the next commit releases the extents it freed.
func (btrfsBackend) reclaim(ctx context.Context, dir string) error {
	if err := btrfsSync(dir); err != nil {
		return err
	}
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		n, err := btrfsDeleted(ctx, dir)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %d deleted btrfs subvolumes to be cleaned: %w", n, ctx.Err())
		case <-time.After(delay):
		}
	}
	return btrfsSync(dir)
}

// btrfsSync commits the filesystem's transaction and wakes its cleaner.
func btrfsSync(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("btrfs sync %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), btrfsIocSync, 0); errno != 0 {
		return fmt.Errorf("btrfs sync %s: %w", dir, errno)
	}
	return nil
}

// btrfsDeleted counts the subvolumes deleted but not yet cleaned.
func btrfsDeleted(ctx context.Context, dir string) (int, error) {
	out, err := sysexec.Run(ctx, "btrfs", "subvolume", "list", "-d", dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range bytes.Split(out, []byte("\n")) {
		if bytes.HasPrefix(l, []byte("ID ")) {
			n++
		}
	}
	return n, nil
}
