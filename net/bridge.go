package stintnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// bridgeAlias marks a bridge as stint's (the link's alias, `ip link` shows
// it): stint adopts a bridge of that name only if it carries the mark.
const bridgeAlias = "stint-managed"

// ErrNotManaged: a link with the bridge's name exists but is not stint's.
var ErrNotManaged = errors.New("link exists and is not managed by stint")

// ensureBridge makes bridge b exist, carry its gateway address and be up,
// with forwarding on; it is idempotent and repairs what is missing (after a
// host reboot the state file outlives the bridge).
func ensureBridge(b *Bridge) error {
	subnet, err := netip.ParsePrefix(b.Subnet)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", b.Name, err)
	}
	gw, err := netip.ParseAddr(b.Gateway)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", b.Name, err)
	}
	link, err := netlink.LinkByName(b.Name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		attrs := netlink.NewLinkAttrs()
		attrs.Name = b.Name
		br := &netlink.Bridge{LinkAttrs: attrs}
		if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create bridge %s: %w", b.Name, err)
		}
		if link, err = netlink.LinkByName(b.Name); err != nil {
			return fmt.Errorf("bridge %s: %w", b.Name, err)
		}
		if err := netlink.LinkSetAlias(link, bridgeAlias); err != nil {
			return fmt.Errorf("mark bridge %s: %w", b.Name, err)
		}
	case err != nil:
		return fmt.Errorf("bridge %s: %w", b.Name, err)
	default:
		if _, ok := link.(*netlink.Bridge); !ok || link.Attrs().Alias != bridgeAlias {
			return fmt.Errorf("bridge %s: %w (type %s, alias %q)", b.Name, ErrNotManaged, link.Type(), link.Attrs().Alias)
		}
	}

	addr := &netlink.Addr{IPNet: &net.IPNet{IP: gw.AsSlice(), Mask: net.CIDRMask(subnet.Bits(), 32)}}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("address %s on bridge %s: %w", addr.IPNet, b.Name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring bridge %s up: %w", b.Name, err)
	}
	// Forwarding routes the containers' traffic through NAT; route_localnet
	// lets a port published on 127.0.0.1 be DNATed to a container.
	if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return err
	}
	if err := writeSysctl(filepath.Join("net/ipv4/conf", b.Name, "route_localnet"), "1"); err != nil {
		return err
	}
	return nil
}

// deleteBridge removes bridge name if it is stint's; a missing one is fine.
func deleteBridge(name string) error {
	link, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bridge %s: %w", name, err)
	}
	if link.Attrs().Alias != bridgeAlias {
		return fmt.Errorf("delete bridge %s: %w", name, ErrNotManaged)
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete bridge %s: %w", name, err)
	}
	return nil
}

// bridgePorts counts the links whose master is bridge name (0 when there
// is no such bridge).
func bridgePorts(name string) (int, error) {
	br, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("bridge %s: %w", name, err)
	}
	links, err := netlink.LinkList()
	if err != nil {
		return 0, fmt.Errorf("bridge %s: list links: %w", name, err)
	}
	n := 0
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			n++
		}
	}
	return n, nil
}

// deleteLink removes the link called name; a missing one is fine.
func deleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// hostPrefixes lists the IPv4 routes and addresses of the current network
// namespace, except those on the links named in skip (stint's own bridges).
func hostPrefixes(skip map[string]bool) ([]netip.Prefix, error) {
	skipIdx := map[int]bool{}
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if skip[l.Attrs().Name] {
			skipIdx[l.Attrs().Index] = true
		}
	}
	var out []netip.Prefix
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil || skipIdx[r.LinkIndex] {
			continue
		}
		if r.Type == unix.RTN_UNREACHABLE || r.Type == unix.RTN_BLACKHOLE || r.Type == unix.RTN_PROHIBIT {
			// A route that only rejects uses no addresses; a bridge's
			// connected /24 is more specific and wins over it (a guard
			// like `ip route add unreachable 10.88.0.0/16` stays valid).
			continue
		}
		if p, ok := prefixOf(r.Dst); ok {
			out = append(out, p)
		}
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if skipIdx[a.LinkIndex] || a.IPNet == nil {
			continue
		}
		if p, ok := prefixOf(a.IPNet); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP.To4())
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(a, bits).Masked(), true
}

// writeSysctl sets /proc/sys/<key> in the calling thread's network namespace.
func writeSysctl(key, value string) error {
	p := filepath.Join("/proc/sys", key)
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

func readSysctl(key string) (string, error) {
	b, err := os.ReadFile(filepath.Join("/proc/sys", key))
	if err != nil {
		return "", err
	}
	return string(b), nil
}
