package stintnet

import (
	"fmt"
	"os"
	"path/filepath"
)

// StateDirEnv names the environment variable that moves the host-wide
// network state elsewhere (tests, a second stint on one host).
const StateDirEnv = "STINT_NET_STATE"

// DefaultStateDir holds the network state of every stint root on the host.
// The bridges and stint's nftables table are the kernel's, one set per
// host, so their bookkeeping is too: per root, two roots handed out the
// same address and one root's prune deleted the other's bridge. It lives in
// /run, a tmpfs: a reboot forgets the state together with the bridges and
// rules it describes.
const DefaultStateDir = "/run/stint/net"

// StateDir is where Open keeps the network state: $STINT_NET_STATE, or
// DefaultStateDir.
func StateDir() string {
	if d := os.Getenv(StateDirEnv); d != "" {
		return d
	}
	return DefaultStateDir
}

// Open returns the Manager of stint root root. The network state is
// host-wide, in StateDir(), shared by every root: root only has to be
// given, so that callers keep naming the root they work for.
func Open(root string) (*Manager, error) {
	if root == "" {
		return nil, fmt.Errorf("open network state: empty root")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open network state for root %s: %w", root, err)
	}
	m, err := OpenDir(StateDir())
	if err != nil {
		return nil, err
	}
	m.root = abs
	return m, nil
}

// OpenDir returns a Manager keeping its state (state.json, its lock, and
// per bridge the hosts and resolv.conf files) in dir. It touches nothing:
// the host-wide state is made and read by what needs it (a bridge's attach,
// a lease's release, gc), so an unusable one fails those only, never a
// container without a network.
func OpenDir(dir string) (*Manager, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open network state %s: %w", dir, err)
	}
	return &Manager{dir: dir, st: store{dir: dir}}, nil
}

// HostsFile is the hosts file of bridge, bind-mounted at /etc/hosts into
// the containers on it.
func (m *Manager) HostsFile(bridge string) string { return m.hostsPath(bridge) }

// Owns reports whether lease l was attached through this Manager's root
// (any lease, for a Manager of OpenDir): a root's garbage collector releases
// only its own leases, never those of another root's live containers.
func (m *Manager) Owns(l *Lease) bool {
	return m.root == "" || l.Root == m.root
}

// Dir is where the Manager keeps its state.
func (m *Manager) Dir() string { return m.dir }
