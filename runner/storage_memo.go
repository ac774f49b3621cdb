package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
	"github.com/stintdev/stint/storage"
)

// A root remembers the storage a spec configured for it, so that commands
// without a spec (`stint gc`, `stint ps`) open the same pool instead of
// driver auto, which may be another driver: records on btrfs then failed
// with "volume … is on storage driver btrfs, not overlay".

// storageMemo is the file, under the root, that holds the last spec's
// storage configuration.
func (h *Host) storageMemo() string { return filepath.Join(h.layout.Root, "storage.json") }

// rememberStorage records cfg (without its Root) for later commands
// without a spec.
func (h *Host) rememberStorage(cfg storage.Config) error {
	cfg.Root = ""
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	p := h.storageMemo()
	if old, err := os.ReadFile(p); err == nil && string(old) == string(b) {
		return nil
	}
	// A temporary file of its own per writer: two stint processes on one
	// root raced on a fixed "storage.json.tmp" and one rename failed.
	if err := renameio.WriteFile(p, b, 0o600); err != nil {
		return fmt.Errorf("remember storage of root %s: %w", h.layout.Root, err)
	}
	return nil
}

// rememberedStorage returns the storage configuration the root's last spec
// gave; ok false when none was recorded (or the file is unreadable: auto
// is the old behaviour).
func (h *Host) rememberedStorage() (cfg storage.Config, ok bool, err error) {
	b, err := os.ReadFile(h.storageMemo())
	if errors.Is(err, os.ErrNotExist) {
		return cfg, false, nil
	}
	if err != nil {
		return cfg, false, fmt.Errorf("read storage of root %s: %w", h.layout.Root, err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.Driver == "" {
		return cfg, false, fmt.Errorf("read storage of root %s: %s is corrupt", h.layout.Root, h.storageMemo())
	}
	cfg.Root = h.layout.Root
	return cfg, true, nil
}
