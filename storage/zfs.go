package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
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
	if _, err := zfsRun(ctx, "create", "-o", "mountpoint=legacy", "-o", "acltype=posixacl", "-o", "xattr=sa", b.ds(m)); err != nil {
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
	if _, err := zfsRun(ctx, "snapshot", b.ds(m)+"@golden"); err != nil {
		return err
	}
	_, err := zfsRun(ctx, "set", "readonly=on", b.ds(m))
	return err
}

func (b zfsBackend) clone(ctx context.Context, _ string, pm *meta, dir string, m *meta) error {
	if _, err := zfsRun(ctx, "clone", "-o", "mountpoint=legacy", "-o", "readonly=off", "-o", "acltype=posixacl", "-o", "xattr=sa", b.ds(pm)+"@golden", b.ds(m)); err != nil {
		return err
	}
	return mkdirIfMissing(filepath.Join(dir, rootfsDir))
}

func (b zfsBackend) activate(ctx context.Context, dir string, m *meta, _ string) error {
	return b.mount(ctx, dir, m, m.Kind == KindGolden)
}

func (b zfsBackend) remove(ctx context.Context, _ string, m *meta) error {
	if _, err := zfsRun(ctx, "list", "-H", "-o", "name", b.ds(m)); errors.Is(err, ErrNotFound) {
		return nil // never created, or already gone
	} else if err != nil {
		return err // zfs itself failed: the dataset may well be there
	}
	_, err := zfsRun(ctx, "destroy", "-r", b.ds(m))
	return err
}

func (b zfsBackend) usage(ctx context.Context, _ string, m *meta) (Usage, error) {
	out, err := zfsRun(ctx, "get", "-Hp", "-o", "value", "used", b.ds(m))
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
	out, err := zfsRun(ctx, "list", "-H", "-o", "name,origin", "-d", "1", "-t", "filesystem", b.dataset)
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
		if _, err := zfsRun(ctx, "destroy", "-r", ds); err != nil {
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

// zfsDriver: datasets, snapshots and clones under a configured dataset.
var zfsDriver = driver{
	name: "zfs",
	probe: func(ctx context.Context, cfg Config, _ string) error {
		if err := needTools("zfs"); err != nil {
			return err
		}
		if _, err := os.Stat("/dev/zfs"); err != nil {
			return unsupported("no /dev/zfs: the zfs kernel module is not loaded")
		}
		if cfg.Dataset == "" {
			return unsupported("no dataset configured (dataset = \"pool/stint\")")
		}
		if _, err := zfsRun(ctx, "list", "-H", "-o", "name", cfg.Dataset); err != nil {
			return unsupported("dataset %s: %v", cfg.Dataset, err)
		}
		return nil
	},
	open: func(_ context.Context, cfg Config, _ string) (backend, error) {
		return zfsBackend{dataset: cfg.Dataset}, nil
	},
}

// zfsRun runs zfs through sysexec. A dataset that does not exist comes back
// as an error wrapping ErrNotFound: classified here, once, from what zfs
// says (exit 1, "dataset does not exist"), never at call sites.
func zfsRun(ctx context.Context, args ...string) ([]byte, error) {
	out, err := sysexec.Run(ctx, "zfs", args...)
	if zfsNotFound(err) {
		return out, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return out, err
}

func zfsNotFound(err error) bool {
	var se *sysexec.Error
	return errors.As(err, &se) && se.ExitCode == 1 && strings.Contains(se.Stderr, "dataset does not exist")
}
