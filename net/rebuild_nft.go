package stintnet

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"strings"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// forward is one published port as its DNAT rule says: the container's
// address and the port.
type forward struct {
	addr netip.Addr
	port Port
}

// portForwards reads the port forwards of stint's table back, by container
// (from the prerouting chain: the output chain repeats them).
func (f *firewall) portForwards() (map[string][]forward, error) {
	rules, err := f.c.GetRules(table, chainRef(chainPrerouting))
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("nftables: list chain %s %s: %w", TableName, chainPrerouting, err)
	}
	out := map[string][]forward{}
	for _, r := range rules {
		c, ok := userdata.GetString(r.UserData, userdata.TypeComment)
		if !ok {
			continue
		}
		name, ok := strings.CutPrefix(c, portTag(""))
		if !ok {
			continue
		}
		if fw, ok := parseForward(r.Exprs); ok {
			out[name] = append(out[name], fw)
		}
	}
	return out, nil
}

// parseForward reads a rule made by addPortRules: [ip daddr A | fib daddr
// type local] meta l4proto P th dport H dnat to C:Q.
func parseForward(exprs []expr.Any) (forward, bool) {
	var fw forward
	loaded := "" // what register 1 holds for the next comparison
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Meta:
			loaded = ""
			if e.Key == expr.MetaKeyL4PROTO {
				loaded = "proto"
			}
		case *expr.Payload:
			loaded = ""
			switch {
			case e.Base == expr.PayloadBaseTransportHeader && e.Offset == 2 && e.Len == 2:
				loaded = "dport"
			case e.Base == expr.PayloadBaseNetworkHeader && e.Offset == 16 && e.Len == 4:
				loaded = "daddr"
			}
		case *expr.Fib:
			loaded = ""
		case *expr.Cmp:
			switch {
			case loaded == "proto" && len(e.Data) == 1 && e.Data[0] == unix.IPPROTO_TCP:
				fw.port.Proto = "tcp"
			case loaded == "proto" && len(e.Data) == 1 && e.Data[0] == unix.IPPROTO_UDP:
				fw.port.Proto = "udp"
			case loaded == "dport" && len(e.Data) == 2:
				fw.port.HostPort = int(binary.BigEndian.Uint16(e.Data))
			case loaded == "daddr" && len(e.Data) == 4:
				fw.port.HostIP = netip.AddrFrom4([4]byte(e.Data)).String()
			}
		case *expr.Immediate:
			switch {
			case e.Register == 1 && len(e.Data) == 4:
				fw.addr = netip.AddrFrom4([4]byte(e.Data))
			case e.Register == 2 && len(e.Data) == 2:
				fw.port.ContainerPort = int(binary.BigEndian.Uint16(e.Data))
			}
		}
	}
	ok := fw.addr.IsValid() && fw.port.Proto != "" && fw.port.HostPort > 0 && fw.port.ContainerPort > 0
	return fw, ok
}

// bridgeSubnets reads each bridge's subnet back from its masquerade rule
// (ip saddr <subnet> oifname != <bridge> masquerade), by bridge name.
func (f *firewall) bridgeSubnets() (map[string]netip.Prefix, error) {
	rules, err := f.c.GetRules(table, chainRef(chainPostrouting))
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("nftables: list chain %s %s: %w", TableName, chainPostrouting, err)
	}
	out := map[string]netip.Prefix{}
	for _, r := range rules {
		c, ok := userdata.GetString(r.UserData, userdata.TypeComment)
		if !ok {
			continue
		}
		name, ok := strings.CutPrefix(c, bridgeTag(""))
		if !ok {
			continue
		}
		if p, ok := parseSaddr(r.Exprs); ok && !p.Addr().IsLoopback() {
			if _, seen := out[name]; !seen {
				out[name] = p
			}
		}
	}
	return out, nil
}

// parseSaddr reads `ip saddr <prefix>` as matchSaddr writes it.
func parseSaddr(exprs []expr.Any) (netip.Prefix, bool) {
	for i := 0; i+2 < len(exprs); i++ {
		p, ok := exprs[i].(*expr.Payload)
		if !ok || p.Base != expr.PayloadBaseNetworkHeader || p.Offset != 12 || p.Len != 4 {
			continue
		}
		bw, ok1 := exprs[i+1].(*expr.Bitwise)
		cmp, ok2 := exprs[i+2].(*expr.Cmp)
		if !ok1 || !ok2 || len(bw.Mask) != 4 || len(cmp.Data) != 4 {
			return netip.Prefix{}, false
		}
		ones := bits.OnesCount32(binary.BigEndian.Uint32(bw.Mask))
		return netip.PrefixFrom(netip.AddrFrom4([4]byte(cmp.Data)), ones).Masked(), true
	}
	return netip.Prefix{}, false
}
