package runner

import (
	"context"
	"fmt"
	"os"

	"github.com/stintdev/stint/internal/idmap"
	stintnet "github.com/stintdev/stint/net"
	"github.com/stintdev/stint/runner/lxcrt"
	"github.com/stintdev/stint/storage"
)

// StorageProbe says whether one storage driver can work on this host.
type StorageProbe = storage.ProbeResult

// NetWarning is something on this host that drops bridged containers'
// traffic, with its fix.
type NetWarning = stintnet.Warning

// CheckOptions say which storage pool `stint check` probes.
type CheckOptions struct {
	Path     string // pool directory (default <root>/storage)
	Loop     bool   // btrfs as a loop-file pool
	Dataset  string // zfs
	VG       string // lvm
	Thinpool string // lvm
}

// HostCheck is what the host offers stint's parts.
type HostCheck struct {
	Pool    string         // the probed pool's path
	Auto    string         // the driver "auto" picks here
	Storage []StorageProbe // every driver, usable or why not
	Network []NetWarning   // never nil
}

// Check probes the host's storage drivers and firewall for root.
func Check(ctx context.Context, root string, opts CheckOptions) HostCheck {
	cfg := storage.Config{Root: root, Path: opts.Path, Dataset: opts.Dataset, VG: opts.VG, Thinpool: opts.Thinpool}
	if opts.Loop {
		cfg.Size = 1
	}
	c := HostCheck{Pool: storage.PoolPath(cfg), Storage: storage.Probe(ctx, cfg), Auto: storage.Auto(ctx, cfg)}
	// Firewall trouble only hurts bridged containers: a warning, not a failure.
	c.Network = stintnet.CheckFirewall(ctx)
	if c.Network == nil {
		c.Network = []NetWarning{}
	}
	return c
}

// LXCVersion is liblxc's version.
func LXCVersion() string { return lxcrt.Version() }

// CheckIDMap describes root's subordinate id ranges; an error says what is
// missing and that stint adds it on first use.
func CheckIDMap() (string, error) {
	m, err := idmap.Load("/etc/subuid", "/etc/subgid")
	if err != nil {
		return "", fmt.Errorf("%v; stint adds root:%d:%d on first use", err, idmap.Default.HostUID, idmap.Default.Size)
	}
	return fmt.Sprintf("uids %d-%d, gids %d-%d", m.HostUID, m.HostUID+m.Size-1, m.HostGID, m.HostGID+m.Size-1), nil
}

// CheckIdmappedMounts says whether this kernel makes idmapped mounts (a
// real one, of a throwaway tmpfs: idmap.IdmappedMounts); an error says why
// not.
func CheckIdmappedMounts() (string, error) {
	ok, err := idmap.IdmappedMounts()
	switch {
	case err != nil:
		return "", err
	case !ok:
		return "", fmt.Errorf("not supported")
	}
	return "yes (host_user uses an id map with a hole all the same)", nil
}

// Reexec serves stint's hidden helper subcommands: main calls it first.
// It closes the descriptors the caller left open (they must not reach a
// container), and when os.Args names a helper (the LXC runtime re-execs
// stint to start and attach: liblxc forks, which a multi-threaded Go
// process must not do itself) it runs it and exits.
func Reexec() {
	lxcrt.CloseInheritedFDs()
	if lxcrt.IsHelper(os.Args) {
		lxcrt.HelperMain()
	}
}
