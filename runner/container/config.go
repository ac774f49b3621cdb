package container

import (
	"context"
	"fmt"
	"io"
	"net/netip"
)

// Config is what a container is made of, independent of the runtime. Each
// runtime renders it its own way (lxcrt: an LXC config file; a remote one:
// instance config and devices).
type Config struct {
	// Root is the container's root filesystem.
	Root Root
	// Hostname defaults to the container's name.
	Hostname string
	// Privileged: no user namespace (container root is host root).
	Privileged bool
	// IDMap is the user namespace of an unprivileged container.
	IDMap *IDMap
	// Mounts are applied in order (parents before children).
	Mounts []Mount
	// Limits: zero values mean unlimited.
	Limits Limits
	// Network is none (loopback only) by default.
	Network Network
	// Init is the container's PID 1: stint's minimal init by default.
	Init Init
	// Raw holds the user's raw spec keys (a spec's `raw` table), applied
	// last so they win. They are runtime-specific (LXC keys for lxcrt); a
	// runtime refuses keys it does not understand with ErrUnsupported.
	// Nothing of stint's own goes here.
	Raw map[string]string
	// LogFile is where the runtime writes its own log (for error reports);
	// empty: the runtime's default place.
	LogFile string
}

// Root describes a container's root filesystem: a local directory for a
// runtime with the zero Capabilities, an image for one with ImageRoot.
type Root struct {
	// Dir is a local directory holding the root filesystem (a mounted
	// storage clone the caller owns and destroys).
	Dir string
	// Image is the image the runtime makes the root from itself.
	Image *ImageRef
}

// ImageRef names an image for a runtime that makes roots from images.
type ImageRef struct {
	// Fingerprint is the image's SHA-256 fingerprint (LXD's own: the same
	// image has the same fingerprint on both sides, so an upload is done
	// once).
	Fingerprint string
	// Open opens the image's files in LXD's format for upload, when the
	// runtime does not hold the fingerprint yet.
	Open func(ctx context.Context) (ImageFiles, error)
}

// ImageFiles are an image's files in LXD's format, as an upload wants them.
type ImageFiles struct {
	// Meta is the metadata tarball (metadata.yaml, templates), or the
	// whole image for a unified tarball.
	Meta io.ReadCloser
	// Rootfs is the root filesystem (squashfs or tarball) of a split
	// image; nil for a unified one.
	Rootfs io.ReadCloser
}

// Close closes both files.
func (f ImageFiles) Close() error {
	var err error
	if f.Meta != nil {
		err = f.Meta.Close()
	}
	if f.Rootfs != nil {
		if e := f.Rootfs.Close(); err == nil {
			err = e
		}
	}
	return err
}

// IDMap maps container ids 0..Size-1 to host ids HostUID.., HostGID...,
// but for Hole.
type IDMap struct {
	HostUID, HostGID, Size uint32
	// Hole, when set, is one host user's uid and gid, mapped 1:1 (container
	// uid Hole.UID is host uid Hole.UID) instead of into the range: a
	// developer's files are theirs on both sides of a bind (host_user).
	Hole *IDHole
}

// IDHole is a uid and a gid a container shares with the host.
type IDHole struct {
	UID, GID uint32
}

// MountType is the kind of a Mount.
type MountType string

// Mount types.
const (
	// MountBind binds a host path (Source). A runtime with CopiedBinds
	// copies a read-only one in and refuses a read-write one.
	MountBind MountType = "bind"
	// MountTmpfs is a fresh tmpfs of Size bytes (0: the kernel's default).
	MountTmpfs MountType = "tmpfs"
	// MountVolume is a named volume that outlives containers (a cache),
	// kept by a runtime with Capabilities.Volumes. Other runtimes never see
	// it: the engine binds a directory of its own instead.
	MountVolume MountType = "volume"
)

// Mount is a filesystem mounted into the container.
type Mount struct {
	Type     MountType // "" means MountBind
	Source   string    // MountBind: a host path
	Volume   string    // MountVolume: the volume's name
	Target   string    // an absolute container path
	Readonly bool
	Size     int64 // MountTmpfs: bytes
}

// Kind is m's type, with the default applied.
func (m Mount) Kind() MountType {
	if m.Type == "" {
		return MountBind
	}
	return m.Type
}

// Limits are resource limits; zero means unlimited.
type Limits struct {
	Memory int64 // bytes
	CPUs   float64
	Pids   int64
}

// NetworkMode is how a container is networked.
type NetworkMode string

// Network modes.
const (
	NetworkNone   NetworkMode = "none"   // a namespace with loopback only
	NetworkHost   NetworkMode = "host"   // the host's network namespace
	NetworkBridge NetworkMode = "bridge" // a NIC on a bridge (Network.Bridge)
)

// Network is the container's network attachment.
type Network struct {
	Mode NetworkMode // "" means NetworkNone
	// Bridge is the attachment of NetworkBridge, as the network manager
	// leased it; required for that mode.
	Bridge *BridgeAttachment
}

// Kind is n's mode, with the default applied.
func (n Network) Kind() NetworkMode {
	if n.Mode == "" {
		return NetworkNone
	}
	return n.Mode
}

// BridgeAttachment is one NIC on a bridge, with everything decided: the
// runtime only renders it (lxcrt: a veth pair; LXD: a nic device).
type BridgeAttachment struct {
	// Bridge is the host bridge (LXD: the managed network's name).
	Bridge string
	// HostVeth is the host side's interface name ("" lets the runtime
	// choose); a local network manager names it to find it again.
	HostVeth string
	// Name is the interface inside the container ("" means eth0).
	Name string
	// Address is the container's IPv4 address with its prefix length.
	Address netip.Prefix
	// Gateway is the default route's next hop.
	Gateway netip.Addr
	// MAC is the NIC's hardware address ("" lets the runtime choose).
	MAC string
	// HostsFile and ResolvConf, when set, are host files bound read-only at
	// /etc/hosts and /etc/resolv.conf (the bridge's names and DNS).
	HostsFile  string
	ResolvConf string
}

// IfName is the interface's name inside the container.
func (b *BridgeAttachment) IfName() string {
	if b.Name == "" {
		return "eth0"
	}
	return b.Name
}

// Broadcast is the broadcast address of Address's subnet.
func (b *BridgeAttachment) Broadcast() netip.Addr {
	p := b.Address.Masked()
	a := p.Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		a[i/8] |= 1 << (7 - i%8)
	}
	return netip.AddrFrom4(a)
}

// Validate checks the attachment has what every runtime needs.
func (b *BridgeAttachment) Validate() error {
	if b == nil {
		return fmt.Errorf("bridge network without an attachment")
	}
	if b.Bridge == "" || !b.Address.IsValid() || !b.Address.Addr().Is4() {
		return fmt.Errorf("bridge attachment needs a bridge and an IPv4 address (have %q, %v)", b.Bridge, b.Address)
	}
	return nil
}

// InitKind says what a container's PID 1 is.
type InitKind string

// Init kinds.
const (
	// InitMinimal is stint's minimal init: it reaps orphans and waits until
	// Stop; work is done by Exec. What a job needs: namespaces to exec
	// into, not a booted distribution (and booting costs seconds).
	InitMinimal InitKind = "minimal"
	// InitCommand runs Init.Command as the container's program under a
	// reaping init, with Init.Env (a long-lived container's `command`).
	InitCommand InitKind = "command"
	// InitBoot execs the image's own init (/sbin/init) as PID 1, with
	// Init.Env (a long-lived container without a `command`).
	InitBoot InitKind = "boot"
)

// Init is a container's PID 1.
type Init struct {
	Kind InitKind // "" means InitMinimal
	// Command is InitCommand's argv (not through a shell).
	Command []string
	// Env is the environment of InitCommand and InitBoot (KEY=VALUE);
	// the runtime adds a default PATH when it has none.
	Env []string
	// ConsoleLog, when set, is a host file that receives PID 1's console
	// (its stdout and stderr); empty: the console is discarded.
	ConsoleLog string
	// Workdir is InitCommand's working directory, an absolute path that
	// exists in the container ("": /): an OCI image config's WorkingDir.
	Workdir string
	// UID and GID are the ids inside the container InitCommand runs as
	// (0: root): an OCI image config's User.
	UID, GID uint32
}

// Kinded is i's kind, with the default applied.
func (i Init) Kinded() InitKind {
	if i.Kind == "" {
		return InitMinimal
	}
	return i.Kind
}
