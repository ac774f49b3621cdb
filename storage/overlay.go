package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// overlayBackend keeps golden volumes as plain directories (read-only bind
// mounts of themselves) and makes a clone an overlay mount: the golden
// rootfs as lowerdir, the clone's own upper and work directories. stint
// mounts the overlay itself and hands LXC the merged directory, which
// avoids LXC's overlay rootfs problems with unprivileged containers
// (lxc/lxc#1370, #4514).
type overlayBackend struct{ noOrphans }

func (overlayBackend) name() string { return "overlay" }

func (overlayBackend) create(_ context.Context, dir string, _ *meta) error {
	return os.Mkdir(filepath.Join(dir, rootfsDir), 0o755)
}

func (overlayBackend) seal(context.Context, string, *meta) error { return nil }

func (overlayBackend) clone(_ context.Context, pdir string, _ *meta, dir string, _ *meta) error {
	// The merged root takes the upper directory's owner and mode: copy them
	// from the golden root, or a shifted container would not own its "/".
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(pdir, rootfsDir), &st); err != nil {
		return fmt.Errorf("stat golden rootfs: %w", err)
	}
	for _, d := range []string{"upper", "work", rootfsDir} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{"upper", rootfsDir} {
		p := filepath.Join(dir, d)
		if err := os.Lchown(p, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		if err := unix.Chmod(p, st.Mode&0o7777); err != nil {
			return fmt.Errorf("chmod %s: %w", p, err)
		}
	}
	return nil
}

func (overlayBackend) activate(_ context.Context, dir string, m *meta, pdir string) error {
	rootfs := filepath.Join(dir, rootfsDir)
	if m.Kind == KindGolden {
		return bindReadOnly(rootfs)
	}
	if ok, err := isMountPoint(rootfs); err != nil || ok {
		return err
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s",
		filepath.Join(pdir, rootfsDir), filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if err := unix.Mount("overlay", rootfs, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay %s (%s): %w", rootfs, opts, err)
	}
	return nil
}

func (overlayBackend) remove(context.Context, string, *meta) error { return nil }

func (overlayBackend) usage(_ context.Context, dir string, m *meta) (Usage, error) {
	if m.Kind == KindGolden {
		return duTree(filepath.Join(dir, rootfsDir))
	}
	// A clone uses what it wrote: its upper directory.
	return duTree(filepath.Join(dir, "upper"))
}

// overlayDriver: overlayfs clones over a golden lower directory.
var overlayDriver = driver{
	name: "overlay",
	probe: func(_ context.Context, _ Config, path string) error {
		if !kernelHas("overlay") {
			return unsupported("the kernel has no overlayfs")
		}
		t, err := fsType(path)
		if err != nil {
			return err
		}
		// An overlay upper directory cannot live on overlayfs (or 9p).
		if t == "overlay" || t == "9p" {
			return unsupported("path %s is %s, which cannot hold overlay upper directories", path, t)
		}
		return nil
	},
	open: func(context.Context, Config, string) (backend, error) { return overlayBackend{}, nil },
}
