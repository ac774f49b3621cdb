package stintnet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/stintdev/stint/internal/lazyre"
	"github.com/vishvananda/netlink"
)

// Network modes, as specs write them.
const (
	ModeNone   = "none"   // loopback only (the default)
	ModeHost   = "host"   // the host's network namespace
	ModeBridge = "bridge" // a veth into a managed bridge
)

// DefaultBridge is the bridge of bridge mode when the spec names none.
const DefaultBridge = "stint0"

// ErrPortInUse: a published host port belongs to another container.
var ErrPortInUse = errors.New("port in use")

// Port is one published port. Its fields match spec.Port, so the runner can
// convert with stintnet.Port(p).
type Port struct {
	HostIP        string `json:"host_ip,omitempty"` // empty: every address of the host
	HostPort      int    `json:"host_port"`
	ContainerPort int    `json:"container_port"`
	Proto         string `json:"proto"` // tcp | udp
}

// Request asks for a container's network.
type Request struct {
	// Container is the container's unique name (its LXC name): the key of
	// its lease, and the name Release is called with.
	Container string
	// Hostname is the name other containers on the bridge resolve it by,
	// e.g. the spec's container name; empty means Container.
	Hostname string
	// Mode is none, host or bridge; empty means none.
	Mode string
	// Bridge names the bridge; empty means DefaultBridge.
	Bridge string
	// IPv4 is a fixed address in the bridge's subnet; empty means any.
	IPv4 string
	// Ports are published on the host (bridge mode only).
	Ports []Port
}

// Lease is a container's network as attached: what the runner hands the
// container runtime (as a typed attachment each runtime renders its own
// way), and keeps in its crash journal. It is JSON-serialisable.
type Lease struct {
	Container string `json:"container"`
	// Root is the stint root that attached it (see Manager.Owns).
	Root      string `json:"root,omitempty"`
	Hostname  string `json:"hostname,omitempty"`
	Mode      string `json:"mode"`
	Bridge    string `json:"bridge,omitempty"`
	IPv4      string `json:"ipv4,omitempty"`
	Gateway   string `json:"gateway,omitempty"`
	PrefixLen int    `json:"prefix_len,omitempty"`
	// HostVeth is the host side of the container's veth (VethName).
	HostVeth string `json:"host_veth,omitempty"`
	Ports    []Port `json:"ports,omitempty"`
	// Hosts and ResolvConf are host files the runtime binds read-only at
	// /etc/hosts and /etc/resolv.conf.
	Hosts      string `json:"hosts,omitempty"`
	ResolvConf string `json:"resolv_conf,omitempty"`
}

// Manager attaches containers to networks and releases them. It is safe for
// concurrent use, and several processes may share one root: every change
// holds a file lock. Kernel objects are made in the network namespace of
// the calling thread (the host's, outside tests).
type Manager struct {
	dir  string
	root string // the stint root it works for; "" from OpenDir
	st   store
	mu   sync.Mutex
}

var bridgeNameRE = lazyre.New(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$`)

// normalize checks req and fills in its defaults.
func normalize(req Request) (Request, error) {
	if req.Container == "" {
		return req, fmt.Errorf("network request without a container name: %w", ErrBadRequest)
	}
	if req.Mode == "" {
		req.Mode = ModeNone
	}
	switch req.Mode {
	case ModeNone, ModeHost, ModeBridge:
	default:
		return req, fmt.Errorf("container %s: network mode %q: want none, host or bridge: %w", req.Container, req.Mode, ErrBadRequest)
	}
	if req.Mode != ModeBridge {
		if len(req.Ports) > 0 {
			return req, fmt.Errorf("container %s: ports need network mode bridge, not %s: %w", req.Container, req.Mode, ErrBadRequest)
		}
		if req.IPv4 != "" || req.Bridge != "" {
			return req, fmt.Errorf("container %s: bridge and ipv4 need network mode bridge, not %s: %w", req.Container, req.Mode, ErrBadRequest)
		}
		return req, nil
	}
	if req.Bridge == "" {
		req.Bridge = DefaultBridge
	}
	if !bridgeNameRE.MatchString(req.Bridge) {
		return req, fmt.Errorf("container %s: bridge name %q: want up to 15 letters, digits, '_', '.', '-': %w", req.Container, req.Bridge, ErrBadRequest)
	}
	if req.Hostname == "" {
		req.Hostname = req.Container
	}
	seen := map[string]bool{}
	for i, p := range req.Ports {
		if p.Proto == "" {
			p.Proto = "tcp"
			req.Ports[i] = p
		}
		if p.Proto != "tcp" && p.Proto != "udp" {
			return req, fmt.Errorf("container %s: port %s: protocol must be tcp or udp: %w", req.Container, p, ErrBadRequest)
		}
		if p.HostPort < 1 || p.HostPort > 65535 || p.ContainerPort < 1 || p.ContainerPort > 65535 {
			return req, fmt.Errorf("container %s: port %s: ports must be 1-65535: %w", req.Container, p, ErrBadRequest)
		}
		if p.HostIP != "" {
			if a, err := netip.ParseAddr(p.HostIP); err != nil || !a.Is4() {
				return req, fmt.Errorf("container %s: port %s: host address must be IPv4: %w", req.Container, p, ErrBadRequest)
			}
		}
		key := fmt.Sprintf("%d/%s", p.HostPort, p.Proto)
		if seen[key] {
			return req, fmt.Errorf("container %s: port %s published twice: %w", req.Container, key, ErrBadRequest)
		}
		seen[key] = true
	}
	return req, nil
}

// Attach gives the container its network before it starts: for bridge mode
// it ensures the bridge and its rules, allocates the address, publishes the
// ports and adds the hosts entry. Attaching a container that holds a lease
// again replaces the lease (keeping its address when it still fits).
func (m *Manager) Attach(ctx context.Context, req Request) (*Lease, error) {
	req, err := normalize(req)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch req.Mode {
	case ModeNone:
		// An empty network: the container has only its loopback.
		return &Lease{Container: req.Container, Mode: ModeNone}, nil
	case ModeHost:
		// No network of its own: the container shares the host's namespace
		// (and the host's resolver configuration).
		return &Lease{Container: req.Container, Mode: ModeHost, ResolvConf: "/etc/resolv.conf"}, nil
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	var lease *Lease
	err = m.st.update(func(st *State) error {
		l, err := m.attachBridge(st, req)
		lease = l
		return err
	})
	if err != nil {
		return nil, err
	}
	return lease, nil
}

func (m *Manager) attachBridge(st *State, req Request) (*Lease, error) {
	b, err := m.ensureBridge(st, req.Bridge)
	if err != nil {
		return nil, err
	}
	fw, err := newFirewall()
	if err != nil {
		return nil, err
	}
	if err := fw.ensureBridgeRules(b); err != nil {
		return nil, err
	}
	if err := portConflicts(st, req); err != nil {
		return nil, err
	}
	fixed := req.IPv4
	if old, ok := st.Leases[req.Container]; ok {
		// Re-attach: drop the old forwards; keep the old address if no
		// other is asked for and it is on the same bridge.
		if err := fw.deleteTagged(portTag(req.Container)); err != nil {
			return nil, err
		}
		if fixed == "" && old.Bridge == b.Name {
			fixed = old.IPv4
		}
		delete(st.Leases, req.Container)
	}
	if fixed == "" {
		// A container whose lease was lost with a corrupt state gets
		// the address it was seen with.
		fixed = reservedAddress(st, req.Container, b.Name)
	}
	addr, err := allocate(st, b, req.Container, fixed)
	if err != nil {
		return nil, fmt.Errorf("container %s on bridge %s: %w", req.Container, b.Name, err)
	}
	subnet, _ := netip.ParsePrefix(b.Subnet)
	l := &Lease{
		Container:  req.Container,
		Root:       m.root,
		Hostname:   req.Hostname,
		Mode:       ModeBridge,
		Bridge:     b.Name,
		IPv4:       addr.String(),
		Gateway:    b.Gateway,
		PrefixLen:  subnet.Bits(),
		HostVeth:   VethName(req.Container),
		Ports:      append([]Port(nil), req.Ports...),
		Hosts:      m.hostsPath(b.Name),
		ResolvConf: m.resolvPath(b.Name),
	}
	if len(l.Ports) > 0 {
		if err := fw.addPortRules(l.Container, addr, l.Ports); err != nil {
			// Roll back what part of the batch made it.
			return nil, errors.Join(err, fw.deleteTagged(portTag(l.Container)))
		}
	}
	st.Leases[l.Container] = l
	dropReservations(st, l.Container)
	if err := m.writeFiles(st, b); err != nil {
		delete(st.Leases, l.Container)
		return nil, errors.Join(err, fw.deleteTagged(portTag(l.Container)))
	}
	return l, nil
}

// ensureBridge returns bridge name from the state, choosing its subnet on
// first use, and makes it exist in the kernel.
func (m *Manager) ensureBridge(st *State, name string) (*Bridge, error) {
	b, ok := st.Bridges[name]
	if !ok {
		skip := map[string]bool{name: true}
		for n := range st.Bridges {
			skip[n] = true
		}
		host, err := hostPrefixes(skip)
		if err != nil {
			return nil, fmt.Errorf("bridge %s: %w", name, err)
		}
		subnet, err := pickSubnet(st, host)
		if err != nil {
			return nil, fmt.Errorf("bridge %s: %w", name, err)
		}
		b = &Bridge{Name: name, Subnet: subnet.String(), Gateway: subnet.Addr().Next().String()}
		st.Bridges[name] = b
	}
	if err := ensureBridge(b); err != nil {
		return nil, err
	}
	return b, nil
}

// portConflicts refuses a host port another container publishes.
func portConflicts(st *State, req Request) error {
	for _, l := range st.Leases {
		if l.Container == req.Container {
			continue
		}
		for _, have := range l.Ports {
			for _, want := range req.Ports {
				if have.HostPort != want.HostPort || have.Proto != want.Proto {
					continue
				}
				if have.HostIP == "" || want.HostIP == "" || have.HostIP == want.HostIP {
					return fmt.Errorf("container %s: host port %d/%s is published by container %s: %w", req.Container, want.HostPort, want.Proto, l.Container, ErrPortInUse)
				}
			}
		}
	}
	return nil
}

func (m *Manager) hostsPath(bridge string) string { return filepath.Join(m.dir, bridge, "hosts") }
func (m *Manager) resolvPath(bridge string) string {
	return filepath.Join(m.dir, bridge, "resolv.conf")
}

// writeFiles rewrites bridge b's hosts and resolv.conf files in place.
func (m *Manager) writeFiles(st *State, b *Bridge) error {
	if err := writeInPlace(m.hostsPath(b.Name), renderHosts(st, b)); err != nil {
		return fmt.Errorf("bridge %s: %w", b.Name, err)
	}
	host, _ := os.ReadFile("/etc/resolv.conf")
	upstream, _ := os.ReadFile("/run/systemd/resolve/resolv.conf")
	if err := writeInPlace(m.resolvPath(b.Name), renderResolv(host, upstream, b.Gateway)); err != nil {
		return fmt.Errorf("bridge %s: %w", b.Name, err)
	}
	return nil
}

// Started checks, after the container started, that its veth is on its
// bridge. It does nothing for modes none and host.
func (m *Manager) Started(ctx context.Context, lease *Lease, initPID int) error {
	if lease == nil || lease.Mode != ModeBridge {
		return nil
	}
	link, err := netlink.LinkByName(lease.HostVeth)
	if err != nil {
		return fmt.Errorf("container %s (pid %d): host veth %s: %w", lease.Container, initPID, lease.HostVeth, err)
	}
	br, err := netlink.LinkByName(lease.Bridge)
	if err != nil {
		return fmt.Errorf("container %s: bridge %s: %w", lease.Container, lease.Bridge, err)
	}
	if link.Attrs().MasterIndex != br.Attrs().Index {
		return fmt.Errorf("container %s: host veth %s is not on bridge %s", lease.Container, lease.HostVeth, lease.Bridge)
	}
	return nil
}

// Release removes the container's network: its host veth (left behind
// when the container was not stopped cleanly), its port forwards, its
// address and its hosts entry. It is idempotent and needs only the name, so
// `stint gc` calls it after a kill -9. A container that holds no lease
// (modes none and host, or released already) costs a link lookup.
func (m *Manager) Release(ctx context.Context, container string) error {
	if container == "" {
		return fmt.Errorf("release network: empty container name")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := deleteLink(VethName(container)); err != nil {
		return fmt.Errorf("release network of %s: %w", container, err)
	}
	st, err := m.st.read()
	if err != nil {
		return err
	}
	if _, ok := st.Leases[container]; !ok && !hasReservation(st, container) {
		return nil
	}
	return m.st.update(func(st *State) error {
		dropReservations(st, container)
		l, ok := st.Leases[container]
		if !ok {
			return nil
		}
		fw, err := newFirewall()
		if err != nil {
			return err
		}
		if err := fw.deleteTagged(portTag(container)); err != nil {
			return fmt.Errorf("release network of %s: %w", container, err)
		}
		delete(st.Leases, container)
		if b, ok := st.Bridges[l.Bridge]; ok {
			if err := m.writeFiles(st, b); err != nil {
				return fmt.Errorf("release network of %s: %w", container, err)
			}
		}
		return nil
	})
}

// List returns a snapshot of the networks' state: bridges and leases.
func (m *Manager) List(ctx context.Context) (*State, error) {
	return m.st.read()
}

// Prune removes what no lease uses: managed bridges without containers
// (no lease, and no port in the kernel; their rules and files too), stint's nftables table once no bridge is
// left, port forwards and host veths of containers without a lease. It
// never touches a bridge a lease uses; the runner's gc releases the leases
// of dead containers first.
func (m *Manager) Prune(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.update(func(st *State) error {
		fw, err := newFirewall()
		if err != nil {
			return err
		}
		if err := dropGoneReservations(st); err != nil {
			return err
		}
		// Orphans of a crash between kernel changes and the state save.
		if err := m.pruneOrphans(st, fw); err != nil {
			return err
		}
		used := map[string]bool{}
		for _, l := range st.Leases {
			used[l.Bridge] = true
		}
		for _, r := range st.Reserved {
			used[r.Bridge] = true
		}
		for name := range st.Bridges {
			if used[name] {
				continue
			}
			// A port on it is a container the state does not know (a
			// lease lost, an older stint): the kernel has the last word.
			ports, err := bridgePorts(name)
			if err != nil {
				return err
			}
			if ports > 0 {
				continue
			}
			if err := fw.deleteTagged(bridgeTag(name)); err != nil {
				return err
			}
			if err := deleteBridge(name); err != nil && !errors.Is(err, ErrNotManaged) {
				return err
			}
			if err := os.RemoveAll(filepath.Join(m.dir, name)); err != nil {
				return fmt.Errorf("bridge %s: %w", name, err)
			}
			delete(st.Bridges, name)
		}
		if len(st.Bridges) == 0 {
			// Another stint root on this host may still have rules in
			// the shared table: delete it only when it is empty.
			if n, err := fw.ruleCount(); err != nil || n > 0 {
				return err
			}
			return fw.deleteTable()
		}
		return nil
	})
}

// pruneOrphans removes port rules and "vst*" veths that belong to no lease.
// Several stint roots may share the host: only veths on this root's bridges
// (or on none) and port rules forwarding into this root's subnets are its
// orphans.
func (m *Manager) pruneOrphans(st *State, fw *firewall) error {
	veths := map[string]bool{}
	for c := range st.Leases {
		veths[VethName(c)] = true
	}
	for _, r := range st.Reserved {
		veths[r.HostVeth] = true
	}
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	ours := map[int]bool{}
	for _, l := range links {
		if _, ok := st.Bridges[l.Attrs().Name]; ok {
			ours[l.Attrs().Index] = true
		}
	}
	var subnets []netip.Prefix
	for _, b := range st.Bridges {
		if p, err := netip.ParsePrefix(b.Subnet); err == nil {
			subnets = append(subnets, p)
		}
	}
	for _, l := range links {
		n := l.Attrs().Name
		if _, ok := l.(*netlink.Veth); ok && vethRE.MatchString(n) && !veths[n] && (ours[l.Attrs().MasterIndex] || l.Attrs().MasterIndex == 0) {
			if err := deleteLink(n); err != nil {
				return err
			}
		}
	}
	tags, err := fw.portTags()
	if err != nil {
		return err
	}
	for _, c := range tags {
		if _, ok := st.Leases[c]; ok {
			continue
		}
		into, err := fw.forwardsInto(portTag(c), subnets)
		if err != nil {
			return err
		}
		if !into {
			continue // another root's container
		}
		if err := fw.deleteTagged(portTag(c)); err != nil {
			return err
		}
	}
	return nil
}

var vethRE = lazyre.New(`^vst[0-9a-f]{12}$`)
