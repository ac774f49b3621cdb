package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/stintdev/stint/internal/sysexec"
)

// Drivers lists the driver names Open accepts besides "auto", in the order
// auto prefers them.
var Drivers = []string{"btrfs", "overlay", "dir", "zfs", "lvm"}

// DefaultLVMSize is the virtual size of a golden thin LV when Config.Size
// is 0 (thin: nothing is allocated up front).
const DefaultLVMSize = 10 << 30

// PoolPath is the directory holding the pool's volumes: cfg.Path, or
// cfg.Root/storage. For a btrfs loop-file pool without a Path it is
// cfg.Root/storage/btrfs, the image being cfg.Root/storage/btrfs.img.
func PoolPath(cfg Config) string {
	if cfg.Path != "" {
		return cfg.Path
	}
	if cfg.Driver == "btrfs" && cfg.Size > 0 {
		return filepath.Join(cfg.Root, "storage", "btrfs")
	}
	return filepath.Join(cfg.Root, "storage")
}

// ProbeResult says whether one driver can work on this host.
type ProbeResult struct {
	Driver string `json:"driver"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"` // why not, when !OK
}

// Probe checks every driver against this host and cfg, without creating
// anything.
func Probe(ctx context.Context, cfg Config) []ProbeResult {
	var out []ProbeResult
	for _, d := range Drivers {
		c := cfg
		c.Driver = d
		err := usable(ctx, c)
		r := ProbeResult{Driver: d, OK: err == nil}
		if err != nil {
			r.Reason = err.Error()
		}
		out = append(out, r)
	}
	return out
}

// Auto names the driver "auto" picks for cfg: btrfs if the pool path is on
// btrfs, otherwise overlay if the kernel has it, otherwise dir.
func Auto(ctx context.Context, cfg Config) string {
	c := cfg
	c.Driver, c.Size = "btrfs", 0
	if usable(ctx, c) == nil {
		return "btrfs"
	}
	c.Driver = "overlay"
	if usable(ctx, c) == nil {
		return "overlay"
	}
	return "dir"
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

func needTools(tools ...string) error {
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			return unsupported("%s not found on PATH", t)
		}
	}
	return nil
}

// usable reports, as an error wrapping ErrUnsupported, why cfg's driver
// cannot work here; nil if it can.
func usable(ctx context.Context, cfg Config) error {
	path := PoolPath(cfg)
	switch cfg.Driver {
	case "dir":
		return needTools("cp")
	case "overlay":
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
	case "btrfs":
		if err := needTools("btrfs"); err != nil {
			return err
		}
		if cfg.Size > 0 {
			if !kernelHas("btrfs") {
				return unsupported("the kernel has no btrfs")
			}
			return needTools("mkfs.btrfs", "mount")
		}
		t, err := fsType(path)
		if err != nil {
			return err
		}
		if t != "btrfs" {
			return unsupported("path %s is %s, not btrfs (set size to make a loop-file pool)", path, t)
		}
		return nil
	case "zfs":
		if err := needTools("zfs"); err != nil {
			return err
		}
		if _, err := os.Stat("/dev/zfs"); err != nil {
			return unsupported("no /dev/zfs: the zfs kernel module is not loaded")
		}
		if cfg.Dataset == "" {
			return unsupported("no dataset configured (dataset = \"pool/stint\")")
		}
		if _, err := sysexec.Run(ctx, "zfs", "list", "-H", "-o", "name", cfg.Dataset); err != nil {
			return unsupported("dataset %s: %v", cfg.Dataset, err)
		}
		return nil
	case "lvm":
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
	default:
		return fmt.Errorf("unknown storage driver %q (want auto, %v)", cfg.Driver, Drivers)
	}
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

// Open opens the pool cfg describes, choosing the driver by cfg.Driver
// ("auto" or empty: see Auto). A driver that cannot work on this host
// returns an error wrapping ErrUnsupported that says why.
func Open(ctx context.Context, cfg Config) (Driver, error) {
	if cfg.Root == "" && cfg.Path == "" {
		return nil, errors.New("open storage: neither root nor path set")
	}
	if cfg.Driver == "" || cfg.Driver == "auto" {
		cfg.Driver = Auto(ctx, cfg)
		cfg.Size = 0 // auto never makes a loop-file pool
	}
	if err := usable(ctx, cfg); err != nil {
		return nil, fmt.Errorf("storage driver %s: %w", cfg.Driver, err)
	}
	path := PoolPath(cfg)
	var be backend
	switch cfg.Driver {
	case "dir":
		be = dirBackend{}
	case "overlay":
		be = overlayBackend{}
	case "btrfs":
		if cfg.Size > 0 {
			if err := btrfsLoopPool(ctx, filepath.Join(cfg.Root, "storage", "btrfs.img"), path, cfg.Size); err != nil {
				return nil, err
			}
		}
		be = btrfsBackend{}
	case "zfs":
		be = zfsBackend{dataset: cfg.Dataset}
	case "lvm":
		size := cfg.Size
		if size <= 0 {
			size = DefaultLVMSize
		}
		be = lvmBackend{vg: cfg.VG, thinpool: cfg.Thinpool, size: size}
	}
	p, err := newPool(be, path)
	if err != nil {
		return nil, err
	}
	return p, nil
}
