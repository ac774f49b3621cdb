package storage

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/stintdev/stint/internal/sysexec"
)

// dirBackend keeps every volume as a plain directory: a clone is a full
// copy (cp --reflink=auto shares extents where the filesystem can, on btrfs
// or xfs). A golden volume is made read-only by a read-only bind mount of
// itself.
type dirBackend struct{ noOrphans }

func (dirBackend) name() string { return "dir" }

func (dirBackend) create(_ context.Context, dir string, _ *meta) error {
	return os.Mkdir(filepath.Join(dir, rootfsDir), 0o755)
}

func (dirBackend) seal(context.Context, string, *meta) error { return nil }

func (dirBackend) clone(ctx context.Context, pdir string, _ *meta, dir string, _ *meta) error {
	// -a keeps owners, modes, links, xattrs; --reflink=auto falls back to a copy.
	_, err := sysexec.Run(ctx, "cp", "-a", "--reflink=auto", "--", filepath.Join(pdir, rootfsDir), filepath.Join(dir, rootfsDir))
	return err
}

func (dirBackend) activate(_ context.Context, dir string, m *meta, _ string) error {
	if m.Kind == KindGolden {
		return bindReadOnly(filepath.Join(dir, rootfsDir))
	}
	return nil
}

func (dirBackend) remove(context.Context, string, *meta) error { return nil }

func (dirBackend) usage(_ context.Context, dir string, _ *meta) (Usage, error) {
	return duTree(filepath.Join(dir, rootfsDir))
}

// duTree sums the allocated bytes and counts the inodes under root, each
// hard-linked inode once.
func duTree(root string) (Usage, error) {
	var u Usage
	seen := map[uint64]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat data", path)
		}
		if seen[st.Ino] {
			return nil
		}
		seen[st.Ino] = true
		u.Inodes++
		u.Bytes += st.Blocks * 512
		return nil
	})
	return u, err
}

// dirDriver: plain directories, copied per clone (the last resort).
var dirDriver = driver{
	name: "dir",
	probe: func(context.Context, Config, string) error {
		return needTools("cp")
	},
	open: func(context.Context, Config, string) (backend, error) { return dirBackend{}, nil },
}
