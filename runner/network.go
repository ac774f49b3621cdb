package runner

import (
	"fmt"
	"net/netip"

	stintnet "github.com/stintdev/stint/net"
	"github.com/stintdev/stint/runner/container"
)

// networkConfig is the runtime's network attachment for mode and, in
// bridge mode, the lease the network manager gave the container.
func networkConfig(mode string, lease *stintnet.Lease) (container.Network, error) {
	switch mode {
	case "", stintnet.ModeNone:
		return container.Network{Mode: container.NetworkNone}, nil
	case stintnet.ModeHost:
		return container.Network{Mode: container.NetworkHost}, nil
	case stintnet.ModeBridge:
	default:
		return container.Network{}, fmt.Errorf("network mode %q is not supported", mode)
	}
	if lease == nil {
		// Planning or a test without a manager: the runtime refuses it.
		return container.Network{Mode: container.NetworkBridge}, nil
	}
	addr, err := netip.ParseAddr(lease.IPv4)
	if err != nil {
		return container.Network{}, fmt.Errorf("network lease of %s: address %q: %w", lease.Container, lease.IPv4, err)
	}
	b := &container.BridgeAttachment{
		Bridge:     lease.Bridge,
		HostVeth:   lease.HostVeth,
		Address:    netip.PrefixFrom(addr, lease.PrefixLen),
		HostsFile:  lease.Hosts,
		ResolvConf: lease.ResolvConf,
	}
	if lease.Gateway != "" {
		if b.Gateway, err = netip.ParseAddr(lease.Gateway); err != nil {
			return container.Network{}, fmt.Errorf("network lease of %s: gateway %q: %w", lease.Container, lease.Gateway, err)
		}
	}
	return container.Network{Mode: container.NetworkBridge, Bridge: b}, nil
}
