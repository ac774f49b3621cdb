package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/stintdev/stint/internal/sysexec"
	"golang.org/x/sys/unix"
)

// zfsBackend keeps each volume as a dataset <Dataset>/<token>, mounted by
// stint (mountpoint=legacy) at the volume's rootfs. A golden volume gets a
// snapshot @golden and readonly=on; a clone is `zfs clone` of that snapshot.
type zfsBackend struct {
	dataset string
}

func (zfsBackend) name() string { return "zfs" }

func (b zfsBackend) ds(m *meta) string { return b.dataset + "/" + m.Token }

func (b zfsBackend) create(ctx context.Context, dir string, m *meta) error {
	if _, err := sysexec.Run(ctx, "zfs", "create", "-o", "mountpoint=legacy", "-o", "acltype=posixacl", "-o", "xattr=sa", b.ds(m)); err != nil {
		return err
	}
	return b.mount(ctx, dir, m, false)
}

func (b zfsBackend) mount(ctx context.Context, dir string, m *meta, ro bool) error {
	rootfs := filepath.Join(dir, rootfsDir)
	if ok, err := isMountPoint(rootfs); err != nil || ok {
		return err
	}
	if err := mkdirIfMissing(rootfs); err != nil {
		return err
	}
	opt := "rw"
	if ro {
		opt = "ro"
	}
	_, err := sysexec.Run(ctx, "mount", "-t", "zfs", "-o", opt, b.ds(m), rootfs)
	return err
}

func (b zfsBackend) seal(ctx context.Context, dir string, m *meta) error {
	if err := unmountAll(dir); err != nil {
		return err
	}
	if _, err := sysexec.Run(ctx, "zfs", "snapshot", b.ds(m)+"@golden"); err != nil {
		return err
	}
	_, err := sysexec.Run(ctx, "zfs", "set", "readonly=on", b.ds(m))
	return err
}

func (b zfsBackend) clone(ctx context.Context, _ string, pm *meta, dir string, m *meta) error {
	if _, err := sysexec.Run(ctx, "zfs", "clone", "-o", "mountpoint=legacy", "-o", "readonly=off", "-o", "acltype=posixacl", "-o", "xattr=sa", b.ds(pm)+"@golden", b.ds(m)); err != nil {
		return err
	}
	return mkdirIfMissing(filepath.Join(dir, rootfsDir))
}

func (b zfsBackend) activate(ctx context.Context, dir string, m *meta, _ string) error {
	return b.mount(ctx, dir, m, m.Kind == KindGolden)
}

func (b zfsBackend) remove(ctx context.Context, _ string, m *meta) error {
	if _, err := sysexec.Run(ctx, "zfs", "list", "-H", "-o", "name", b.ds(m)); err != nil {
		return nil // never created, or already gone
	}
	_, err := sysexec.Run(ctx, "zfs", "destroy", "-r", b.ds(m))
	return err
}

func (b zfsBackend) usage(ctx context.Context, _ string, m *meta) (Usage, error) {
	out, err := sysexec.Run(ctx, "zfs", "get", "-Hp", "-o", "value", "used", b.ds(m))
	if err != nil {
		return Usage{}, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return Usage{}, fmt.Errorf("zfs get used %s: %q: %w", b.ds(m), out, err)
	}
	return Usage{Bytes: n}, nil
}

// orphans destroys datasets under the pool dataset that no volume names:
// a crash between `zfs create` and the directory's rename leaves them.
// Clones go first, as a golden dataset cannot go while they exist.
func (b zfsBackend) orphans(ctx context.Context, known map[string]bool) error {
	out, err := sysexec.Run(ctx, "zfs", "list", "-H", "-o", "name,origin", "-d", "1", "-t", "filesystem", b.dataset)
	if err != nil {
		return err
	}
	var clones, goldens []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		name, ok := strings.CutPrefix(f[0], b.dataset+"/")
		if !ok || known[name] {
			continue
		}
		if len(f) > 1 && f[1] != "-" {
			clones = append(clones, f[0])
		} else {
			goldens = append(goldens, f[0])
		}
	}
	for _, ds := range append(clones, goldens...) {
		if _, err := sysexec.Run(ctx, "zfs", "destroy", "-r", ds); err != nil {
			return fmt.Errorf("sweep dataset %s: %w", ds, err)
		}
	}
	return nil
}

func mkdirIfMissing(dir string) error {
	if err := unix.Mkdir(dir, 0o755); err != nil && err != unix.EEXIST {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	return nil
}
