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
)

// lvmBackend keeps each volume as a thin LV "stint_<token>" in the thin
// pool VG/Thinpool, with ext4 on it, mounted by stint at the volume's
// rootfs. A golden LV is mounted read-only; a clone is a thin snapshot of
// it (`lvcreate -s`), activated with -K since thin snapshots carry the
// activation-skip flag.
type lvmBackend struct {
	vg, thinpool string
	size         int64 // virtual size of a golden LV
}

func (lvmBackend) name() string { return "lvm" }

func (b lvmBackend) lv(m *meta) string  { return "stint_" + m.Token }
func (b lvmBackend) dev(m *meta) string { return "/dev/" + b.vg + "/" + b.lv(m) }

// lvmArgs prepends the --config that lets lvm work without udev (it then
// makes the /dev nodes itself) and never starts dmeventd.
func lvmArgs(args ...string) []string {
	cfg := "activation { monitoring=0 } devices { use_devicesfile=0 }"
	if _, err := os.Stat("/run/udev/control"); err != nil {
		cfg = "activation { udev_sync=0 udev_rules=0 monitoring=0 } devices { obtain_device_list_from_udev=0 use_devicesfile=0 }"
	}
	return append([]string{args[0], "--config", cfg}, args[1:]...)
}

// lvmRun runs an lvm command through sysexec. A volume group or logical
// volume that does not exist comes back as an error wrapping ErrNotFound:
// classified here, once, from what lvm says (exit 5, "Failed to find
// logical volume" or "Volume group ... not found"), never at call sites.
func lvmRun(ctx context.Context, args ...string) ([]byte, error) {
	out, err := sysexec.Run(ctx, "lvm", lvmArgs(args...)...)
	if lvmNotFound(err) {
		return out, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return out, err
}

func lvmNotFound(err error) bool {
	var se *sysexec.Error
	if !errors.As(err, &se) || se.ExitCode != 5 {
		return false
	}
	return strings.Contains(se.Stderr, "Failed to find logical volume") ||
		(strings.Contains(se.Stderr, "Volume group") && strings.Contains(se.Stderr, "not found"))
}

func (b lvmBackend) create(ctx context.Context, dir string, m *meta) error {
	if _, err := lvmRun(ctx, "lvcreate", "-q", "-T", b.vg+"/"+b.thinpool, "-V", fmt.Sprintf("%db", b.size), "-n", b.lv(m)); err != nil {
		return err
	}
	if _, err := sysexec.Run(ctx, "mkfs.ext4", "-q", "-E", "nodiscard", b.dev(m)); err != nil {
		return err
	}
	return b.mount(ctx, dir, m, false)
}

func (b lvmBackend) mount(ctx context.Context, dir string, m *meta, ro bool) error {
	rootfs := filepath.Join(dir, rootfsDir)
	if ok, err := isMountPoint(rootfs); err != nil || ok {
		return err
	}
	if err := mkdirIfMissing(rootfs); err != nil {
		return err
	}
	if _, err := os.Stat(b.dev(m)); err != nil {
		if _, err := lvmRun(ctx, "lvchange", "-ay", "-K", b.vg+"/"+b.lv(m)); err != nil {
			return err
		}
	}
	opt := "rw"
	if ro {
		opt = "ro,noload"
	}
	_, err := sysexec.Run(ctx, "mount", "-t", "ext4", "-o", opt, b.dev(m), rootfs)
	return err
}

func (b lvmBackend) seal(context.Context, string, *meta) error { return nil }

func (b lvmBackend) clone(ctx context.Context, _ string, pm *meta, dir string, m *meta) error {
	if _, err := lvmRun(ctx, "lvcreate", "-q", "-s", "-n", b.lv(m), b.vg+"/"+b.lv(pm)); err != nil {
		return err
	}
	if _, err := lvmRun(ctx, "lvchange", "-ay", "-K", b.vg+"/"+b.lv(m)); err != nil {
		return err
	}
	return mkdirIfMissing(filepath.Join(dir, rootfsDir))
}

func (b lvmBackend) activate(ctx context.Context, dir string, m *meta, _ string) error {
	return b.mount(ctx, dir, m, m.Kind == KindGolden)
}

func (b lvmBackend) remove(ctx context.Context, _ string, m *meta) error {
	if _, err := lvmRun(ctx, "lvs", b.vg+"/"+b.lv(m)); errors.Is(err, ErrNotFound) {
		return nil // never created, or already gone
	} else if err != nil {
		return err // lvm itself failed: the volume may well be there
	}
	_, err := lvmRun(ctx, "lvremove", "-q", "-f", b.vg+"/"+b.lv(m))
	return err
}

func (b lvmBackend) usage(ctx context.Context, _ string, m *meta) (Usage, error) {
	// Mapped bytes of the thin LV (for a clone this includes blocks it
	// still shares with its golden volume: lvm does not tell them apart).
	out, err := lvmRun(ctx, "lvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "lv_size,data_percent", b.vg+"/"+b.lv(m))
	if err != nil {
		return Usage{}, err
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return Usage{}, fmt.Errorf("lvs %s: unexpected output %q", b.lv(m), out)
	}
	size, err1 := strconv.ParseFloat(f[0], 64)
	pct, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil {
		return Usage{}, fmt.Errorf("lvs %s: unexpected output %q", b.lv(m), out)
	}
	return Usage{Bytes: int64(size * pct / 100)}, nil
}

// orphans removes stint_* thin LVs of the pool that no volume names,
// snapshots first.
func (b lvmBackend) orphans(ctx context.Context, known map[string]bool) error {
	out, err := lvmRun(ctx, "lvs", "--noheadings", "-o", "lv_name,origin,pool_lv", b.vg)
	if err != nil {
		return err
	}
	var snaps, origins []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		tok, ok := strings.CutPrefix(f[0], "stint_")
		if !ok || known[tok] || f[len(f)-1] != b.thinpool {
			continue
		}
		if len(f) == 3 {
			snaps = append(snaps, f[0])
		} else {
			origins = append(origins, f[0])
		}
	}
	for _, lv := range append(snaps, origins...) {
		if _, err := lvmRun(ctx, "lvremove", "-q", "-f", b.vg+"/"+lv); err != nil {
			return fmt.Errorf("sweep LV %s/%s: %w", b.vg, lv, err)
		}
	}
	return nil
}

// lvmDriver: thin LVs and their snapshots in a configured thin pool.
var lvmDriver = driver{
	name: "lvm",
	probe: func(ctx context.Context, cfg Config, _ string) error {
		if err := needTools("lvm", "mkfs.ext4"); err != nil {
			return err
		}
		if _, err := os.Stat("/dev/mapper/control"); err != nil {
			return unsupported("no /dev/mapper/control: the kernel has no device-mapper")
		}
		if cfg.VG == "" || cfg.Thinpool == "" {
			return unsupported("no volume group and thin pool configured (vg, thinpool)")
		}
		out, err := lvmRun(ctx, "lvs", "--noheadings", "-o", "lv_attr", cfg.VG+"/"+cfg.Thinpool)
		if err != nil {
			return unsupported("thin pool %s/%s: %v", cfg.VG, cfg.Thinpool, err)
		}
		if !containsThinPoolAttr(string(out)) {
			return unsupported("%s/%s is not a thin pool", cfg.VG, cfg.Thinpool)
		}
		return nil
	},
	open: func(_ context.Context, cfg Config, _ string) (backend, error) {
		size := cfg.Size
		if size <= 0 {
			size = DefaultLVMSize
		}
		return lvmBackend{vg: cfg.VG, thinpool: cfg.Thinpool, size: size}, nil
	},
}

// containsThinPoolAttr checks lv_attr's first character: 't' for a thin pool.
func containsThinPoolAttr(attr string) bool {
	for _, c := range attr {
		if c == ' ' || c == '\t' || c == '\n' {
			continue
		}
		return c == 't'
	}
	return false
}
