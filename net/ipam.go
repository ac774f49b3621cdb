package stintnet

import (
	"errors"
	"fmt"
	"net/netip"
)

// Sentinels, checked with errors.Is.
var (
	// ErrAddressInUse: a requested fixed address belongs to another container.
	ErrAddressInUse = errors.New("address in use")
	// ErrPoolExhausted: the bridge's subnet has no free address left.
	ErrPoolExhausted = errors.New("no free address")
	// ErrNoSubnet: no /24 of the stint range is free of host routes and addresses.
	ErrNoSubnet = errors.New("no free subnet")
	// ErrBadRequest: the request itself is wrong (mode, address, ports).
	ErrBadRequest = errors.New("bad network request")
)

// Range is where stint's bridges take their subnets from, one /24 each; the
// default bridge gets the first free one (10.88.0.0/24 on most hosts), well
// away from LXC's 10.0.3.0/24 and Docker's 172.17.0.0/16.
var Range = netip.MustParsePrefix("10.88.0.0/16")

// pickSubnet chooses a /24 for a new bridge: the first one in Range that no
// other stint bridge uses and that overlaps none of the host's prefixes
// (routes and addresses; the default route is not a collision).
func pickSubnet(st *State, host []netip.Prefix) (netip.Prefix, error) {
	used := map[netip.Prefix]bool{}
	for _, b := range st.Bridges {
		if p, err := netip.ParsePrefix(b.Subnet); err == nil {
			used[p.Masked()] = true
		}
	}
	base := Range.Addr().As4()
	for n := 0; n < 256; n++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{base[0], base[1], byte(n), 0}), 24)
		if used[p] || collides(p, host) {
			continue
		}
		return p, nil
	}
	return netip.Prefix{}, fmt.Errorf("choose a subnet in %s: %w", Range, ErrNoSubnet)
}

// collides reports whether p overlaps one of the host's prefixes.
func collides(p netip.Prefix, host []netip.Prefix) bool {
	for _, h := range host {
		if h.Bits() == 0 { // the default route covers everything; not a collision
			continue
		}
		if h.Overlaps(p) {
			return true
		}
	}
	return false
}

// allocate chooses container's address on bridge b and returns it. A fixed
// address is honoured or refused with the name of the container holding it.
// Dynamic addresses come from the upper half of the subnet first, so that
// the lower half stays free for fixed addresses written in specs.
func allocate(st *State, b *Bridge, container, fixed string) (netip.Addr, error) {
	subnet, err := netip.ParsePrefix(b.Subnet)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("bridge %s: subnet %q: %w", b.Name, b.Subnet, err)
	}
	gw, err := netip.ParseAddr(b.Gateway)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("bridge %s: gateway %q: %w", b.Name, b.Gateway, err)
	}
	taken := map[netip.Addr]string{}
	for _, l := range st.Leases {
		if l.Bridge != b.Name || l.Container == container || l.IPv4 == "" {
			continue
		}
		if a, err := netip.ParseAddr(l.IPv4); err == nil {
			taken[a] = "container " + l.Container
		}
	}
	for _, r := range st.Reserved {
		if r.Bridge != b.Name || r.IPv4 == "" || r.of(container) {
			continue
		}
		if a, err := netip.ParseAddr(r.IPv4); err == nil {
			taken[a] = r.String()
		}
	}
	size := uint32(1) << (32 - subnet.Bits())
	first := u32(subnet.Masked().Addr())
	reserved := func(a netip.Addr) bool {
		off := u32(a) - first
		return off == 0 || off == size-1 || a == gw
	}

	if fixed != "" {
		a, err := netip.ParseAddr(fixed)
		if err != nil || !a.Is4() {
			return netip.Addr{}, fmt.Errorf("ipv4 %q is not an IPv4 address: %w", fixed, ErrBadRequest)
		}
		if !subnet.Contains(a) {
			return netip.Addr{}, fmt.Errorf("ipv4 %s is outside bridge %s's subnet %s: %w", a, b.Name, subnet, ErrBadRequest)
		}
		if reserved(a) {
			return netip.Addr{}, fmt.Errorf("ipv4 %s is reserved on bridge %s (network, gateway or broadcast address): %w", a, b.Name, ErrBadRequest)
		}
		if owner, ok := taken[a]; ok {
			return netip.Addr{}, fmt.Errorf("%s is taken by %s: %w", a, owner, ErrAddressInUse)
		}
		return a, nil
	}

	if size < 4 {
		return netip.Addr{}, fmt.Errorf("bridge %s: subnet %s: %w", b.Name, subnet, ErrPoolExhausted)
	}
	half := size / 2
	try := func(lo, hi uint32) (netip.Addr, bool) { // host offsets [lo, hi)
		start := b.Next
		if start < lo || start >= hi {
			start = lo
		}
		for i := uint32(0); i < hi-lo; i++ {
			off := lo + (start-lo+i)%(hi-lo)
			a := addrFrom(first + off)
			if reserved(a) {
				continue
			}
			if _, ok := taken[a]; ok {
				continue
			}
			b.Next = off + 1
			return a, true
		}
		return netip.Addr{}, false
	}
	if a, ok := try(half, size-1); ok {
		return a, nil
	}
	if a, ok := try(1, half); ok {
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("bridge %s: subnet %s: %w", b.Name, subnet, ErrPoolExhausted)
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addrFrom(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// broadcast is the last address of subnet p.
func broadcast(p netip.Prefix) netip.Addr {
	p = p.Masked()
	return addrFrom(u32(p.Addr()) | (1<<(32-p.Bits()) - 1))
}
