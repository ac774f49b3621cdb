package storage

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
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

// driver is one storage backend as the registry knows it. Each backend's
// file declares its own (its probe beside its code); registry lists them.
type driver struct {
	name string
	// probe says, as an error wrapping ErrUnsupported, why the driver
	// cannot work here for cfg (pool path: path); nil if it can.
	probe func(ctx context.Context, cfg Config, path string) error
	// open returns the backend for cfg, making what it needs first (a
	// loop-file pool).
	open func(ctx context.Context, cfg Config, path string) (backend, error)
}

// registry holds every driver, in the order auto prefers them.
var registry = []driver{btrfsDriver, overlayDriver, dirDriver, zfsDriver, lvmDriver}

func lookup(name string) (driver, error) {
	for _, d := range registry {
		if d.name == name {
			return d, nil
		}
	}
	return driver{}, fmt.Errorf("unknown storage driver %q (want auto, %v)", name, Drivers)
}

// usable reports, as an error wrapping ErrUnsupported, why cfg's driver
// cannot work here; nil if it can.
func usable(ctx context.Context, cfg Config) error {
	d, err := lookup(cfg.Driver)
	if err != nil {
		return err
	}
	return d.probe(ctx, cfg, PoolPath(cfg))
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
	d, err := lookup(cfg.Driver)
	if err != nil {
		return nil, err
	}
	be, err := d.open(ctx, cfg, path)
	if err != nil {
		return nil, err
	}
	p, err := newPool(be, path)
	if err != nil {
		return nil, err
	}
	return p, nil
}
