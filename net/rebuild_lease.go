package stintnet

import (
	"net/netip"
	"path/filepath"
	"slices"

	"github.com/vishvananda/netlink"
)

// fromVeth rebuilds the lease of the container whose host veth is link, on
// bridge b, or, when its name or address is not to be had, a reservation.
func (ev *evidence) fromVeth(b *Bridge, link netlink.Link) (*Lease, *Reservation) {
	veth := link.Attrs().Name
	subnet := netip.MustParsePrefix(b.Subnet)
	peer := ev.peers.peer(link, subnet)
	name, root := "", ""
	for _, c := range peer.names {
		if VethName(c.name) == veth {
			name, root = c.name, c.root
			break
		}
	}
	for _, e := range ev.hosts[b.Name] {
		for _, n := range e.names {
			if name == "" && VethName(n) == veth {
				name = n
			}
		}
	}
	for _, c := range sortedKeys(ev.ports) {
		if name == "" && VethName(c) == veth {
			name = c
		}
	}
	addr := peer.addr
	entry := ev.entryOf(b.Name, name, addr)
	if !addr.IsValid() && entry != nil {
		addr = entry.addr
	}
	if f := ev.ports[name]; !addr.IsValid() && len(f) > 0 {
		addr = f[0].addr
	}
	if entry != nil {
		entry.used = true
	}
	if name != "" && addr.IsValid() {
		return ev.lease(b, name, root, addr, entry), nil
	}
	r := &Reservation{Bridge: b.Name, HostVeth: veth}
	if addr.IsValid() {
		r.IPv4 = addr.String()
		r.Reason = "a running container's veth whose name no hosts entry, port rule or LXC monitor gives"
	} else {
		r.Reason = "a running container's veth whose address neither its network namespace, the hosts file nor a port rule gives"
	}
	if entry != nil {
		r.Names = slices.Clone(entry.names)
	} else if name != "" {
		r.Names = []string{name}
	}
	return nil, r
}

// fromPorts rebuilds the lease of container c from its port rules: c is
// the rules' exact name, and a container whose rules outlive its veth is a
// stopped long-lived one (Release removes the rules of the others).
func (ev *evidence) fromPorts(st *State, c string) *Lease {
	fwd := ev.ports[c]
	if len(fwd) == 0 {
		return nil
	}
	for _, b := range st.Bridges {
		if !netip.MustParsePrefix(b.Subnet).Contains(fwd[0].addr) {
			continue
		}
		entry := ev.entryOf(b.Name, c, fwd[0].addr)
		if entry != nil {
			entry.used = true
		}
		return ev.lease(b, c, "", fwd[0].addr, entry)
	}
	return nil
}

// entryOf is the hosts entry of bridge that names container (or, failing
// that, has addr).
func (ev *evidence) entryOf(bridge, container string, addr netip.Addr) *hostsEntry {
	for _, e := range ev.hosts[bridge] {
		if container != "" && slices.Contains(e.names, container) {
			return e
		}
	}
	for _, e := range ev.hosts[bridge] {
		if addr.IsValid() && e.addr == addr {
			return e
		}
	}
	return nil
}

// lease is the rebuilt lease of container on bridge b at addr, as Attach
// made it: the hostname is the first name of its hosts entry.
func (ev *evidence) lease(b *Bridge, container, root string, addr netip.Addr, entry *hostsEntry) *Lease {
	subnet := netip.MustParsePrefix(b.Subnet)
	hostname := container
	if entry != nil && len(entry.names) > 0 {
		hostname = entry.names[0]
	}
	var ports []Port
	for _, f := range ev.ports[container] {
		ports = append(ports, f.port)
	}
	return &Lease{
		Container:  container,
		Root:       root,
		Hostname:   hostname,
		Mode:       ModeBridge,
		Bridge:     b.Name,
		IPv4:       addr.String(),
		Gateway:    b.Gateway,
		PrefixLen:  subnet.Bits(),
		HostVeth:   VethName(container),
		Ports:      ports,
		Hosts:      filepath.Join(ev.dir, b.Name, "hosts"),
		ResolvConf: filepath.Join(ev.dir, b.Name, "resolv.conf"),
	}
}
