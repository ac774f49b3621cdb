package stintnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// TableName is stint's own nftables table, family ip: `nft list table ip stint`.
const TableName = "stint"

// The base chains of stint's table.
const (
	chainPrerouting  = "prerouting"  // nat: DNAT of published ports, traffic from outside
	chainOutput      = "output"      // nat: DNAT of published ports, traffic from the host
	chainPostrouting = "postrouting" // nat: masquerade
	chainForward     = "forward"     // filter: accept the bridges' traffic
)

// Every rule carries a comment naming what owns it, so teardown finds the
// rules of a container (or bridge) from its name alone.
func bridgeTag(bridge string) string  { return "stint bridge " + bridge }
func portTag(container string) string { return "stint ports " + container }

var table = &nftables.Table{Family: nftables.TableFamilyIPv4, Name: TableName}

func chains() []*nftables.Chain {
	accept := nftables.ChainPolicyAccept
	return []*nftables.Chain{
		{Name: chainPrerouting, Table: table, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest},
		{Name: chainOutput, Table: table, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest},
		{Name: chainPostrouting, Table: table, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource},
		{Name: chainForward, Table: table, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept},
	}
}

func chainRef(name string) *nftables.Chain { return &nftables.Chain{Name: name, Table: table} }

// firewall is a connection to nftables in the calling thread's network
// namespace.
type firewall struct {
	c *nftables.Conn
}

func newFirewall() (*firewall, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return &firewall{c: c}, nil
}

// ensureBridgeRules creates stint's table and chains if missing and adds the
// bridge's NAT and forward rules unless they are there already.
func (f *firewall) ensureBridgeRules(b *Bridge) error {
	subnet, err := netip.ParsePrefix(b.Subnet)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", b.Name, err)
	}
	// AddTable/AddChain are "create or keep" (NLM_F_CREATE without EXCL).
	f.c.AddTable(table)
	for _, ch := range chains() {
		f.c.AddChain(ch)
	}
	if err := f.c.Flush(); err != nil {
		return fmt.Errorf("nftables table %s: %w", TableName, err)
	}
	tag := bridgeTag(b.Name)
	have, err := f.tagged(tag)
	if err != nil {
		return err
	}
	if len(have) > 0 {
		return nil
	}
	br := ifname(b.Name)
	rules := map[string][][]expr.Any{
		chainPostrouting: {
			// ip saddr <subnet> oifname != <br> masquerade: the containers' way out.
			join(matchSaddr(subnet), matchIfname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, br), masq()),
			// oifname <br> ip saddr 127.0.0.0/8 masquerade: a published port
			// reached on 127.0.0.1 must not reach the container from 127.0.0.1.
			join(matchIfname(expr.MetaKeyOIFNAME, expr.CmpOpEq, br), matchSaddr(netip.MustParsePrefix("127.0.0.0/8")), masq()),
			// oifname <br> ip saddr <subnet> ct status dnat masquerade: a
			// container reaching a published port of its own bridge (hairpin).
			join(matchIfname(expr.MetaKeyOIFNAME, expr.CmpOpEq, br), matchSaddr(subnet), matchCtStatusDNAT(), masq()),
		},
		chainForward: {
			// iifname <br> accept
			join(matchIfname(expr.MetaKeyIIFNAME, expr.CmpOpEq, br), accept()),
			// oifname <br> ct state established,related accept
			join(matchIfname(expr.MetaKeyOIFNAME, expr.CmpOpEq, br), matchCtState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), accept()),
			// oifname <br> ct status dnat accept: published ports
			join(matchIfname(expr.MetaKeyOIFNAME, expr.CmpOpEq, br), matchCtStatusDNAT(), accept()),
		},
	}
	for chain, list := range rules {
		for _, ex := range list {
			f.c.AddRule(&nftables.Rule{Table: table, Chain: chainRef(chain), Exprs: ex, UserData: comment(tag)})
		}
	}
	if err := f.c.Flush(); err != nil {
		return fmt.Errorf("nftables rules for bridge %s: %w", b.Name, err)
	}
	return nil
}

// addPortRules publishes ports of the container at addr: DNAT in prerouting
// (from outside and from other containers) and output (from the host).
func (f *firewall) addPortRules(container string, addr netip.Addr, ports []Port) error {
	tag := portTag(container)
	for _, p := range ports {
		proto := byte(unix.IPPROTO_TCP)
		if p.Proto == "udp" {
			proto = unix.IPPROTO_UDP
		}
		var dst []expr.Any
		if p.HostIP != "" {
			hip, err := netip.ParseAddr(p.HostIP)
			if err != nil {
				return fmt.Errorf("port %s: host ip: %w", p, err)
			}
			dst = matchDaddr(hip)
		} else {
			dst = matchDaddrLocal()
		}
		ex := join(dst, matchPort(proto, uint16(p.HostPort)), dnat(addr, uint16(p.ContainerPort)))
		for _, chain := range []string{chainPrerouting, chainOutput} {
			f.c.AddRule(&nftables.Rule{Table: table, Chain: chainRef(chain), Exprs: ex, UserData: comment(tag)})
		}
	}
	if err := f.c.Flush(); err != nil {
		return fmt.Errorf("nftables port forwards of %s: %w", container, err)
	}
	return nil
}

// deleteTagged removes every rule carrying tag; a missing table is fine.
func (f *firewall) deleteTagged(tag string) error {
	rules, err := f.tagged(tag)
	if err != nil {
		return err
	}
	for _, r := range rules {
		if err := f.c.DelRule(r); err != nil {
			return fmt.Errorf("nftables: delete rule %q: %w", tag, err)
		}
	}
	if len(rules) == 0 {
		return nil
	}
	if err := f.c.Flush(); err != nil {
		return fmt.Errorf("nftables: delete rules %q: %w", tag, err)
	}
	return nil
}

// tagged lists the rules of stint's table carrying tag.
func (f *firewall) tagged(tag string) ([]*nftables.Rule, error) {
	var out []*nftables.Rule
	for _, ch := range chains() {
		rules, err := f.c.GetRules(table, chainRef(ch.Name))
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("nftables: list chain %s %s: %w", TableName, ch.Name, err)
		}
		for _, r := range rules {
			if c, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok && c == tag {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// deleteTable removes stint's table (every chain and rule); a missing one is fine.
func (f *firewall) deleteTable() error {
	if _, err := f.c.ListTableOfFamily(TableName, nftables.TableFamilyIPv4); err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("nftables: table %s: %w", TableName, err)
	}
	f.c.DelTable(table)
	if err := f.c.Flush(); err != nil {
		return fmt.Errorf("nftables: delete table %s: %w", TableName, err)
	}
	return nil
}

// isNotFound: the table or chain does not exist (ENOENT from the kernel).
func isNotFound(err error) bool {
	return err != nil && (errors.Is(err, unix.ENOENT) || errors.Is(err, os.ErrNotExist))
}

func comment(s string) []byte { return userdata.AppendString(nil, userdata.TypeComment, s) }

func join(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// ifname is an interface name as nftables compares it: NUL-padded to IFNAMSIZ.
func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

func matchIfname(key expr.MetaKey, op expr.CmpOp, name []byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: name}}
}

func matchSaddr(p netip.Prefix) []expr.Any { return matchAddr(12, p) }

func matchDaddr(a netip.Addr) []expr.Any { return matchAddr(16, netip.PrefixFrom(a, 32)) }

// matchAddr matches the IPv4 header's address at offset (12 source, 16
// destination) against prefix p.
func matchAddr(offset uint32, p netip.Prefix) []expr.Any {
	mask := make([]byte, 4)
	binary.BigEndian.PutUint32(mask, ^uint32(0)<<(32-p.Bits()))
	net := p.Masked().Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: net[:]},
	}
}

// matchDaddrLocal is `fib daddr type local`: any address of the host.
func matchDaddrLocal() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

// matchPort is `meta l4proto <proto> th dport <port>`.
func matchPort(proto byte, port uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

func matchCtState(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

// ipsDstNAT is IPS_DST_NAT of the conntrack status bits.
const ipsDstNAT = 1 << 5

func matchCtStatusDNAT() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

func masq() []expr.Any   { return []expr.Any{&expr.Masq{}} }
func accept() []expr.Any { return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}} }

// dnat is `dnat to <addr>:<port>`.
func dnat(addr netip.Addr, port uint16) []expr.Any {
	a := addr.As4()
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: a[:]},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
}

// String is the port in spec form: [host_ip:]host_port:container_port/proto.
func (p Port) String() string {
	s := fmt.Sprintf("%d:%d/%s", p.HostPort, p.ContainerPort, p.Proto)
	if p.HostIP != "" {
		s = p.HostIP + ":" + s
	}
	return s
}

// portTags lists the containers that have port rules in stint's table.
func (f *firewall) portTags() ([]string, error) {
	seen := map[string]bool{}
	var out []string
	prefix := portTag("")
	for _, ch := range chains() {
		rules, err := f.c.GetRules(table, chainRef(ch.Name))
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("nftables: list chain %s %s: %w", TableName, ch.Name, err)
		}
		for _, r := range rules {
			c, ok := userdata.GetString(r.UserData, userdata.TypeComment)
			if ok && strings.HasPrefix(c, prefix) && !seen[c] {
				seen[c] = true
				out = append(out, strings.TrimPrefix(c, prefix))
			}
		}
	}
	return out, nil
}

// forwardsInto reports whether a rule carrying tag forwards (DNAT) to an
// address in one of subnets.
func (f *firewall) forwardsInto(tag string, subnets []netip.Prefix) (bool, error) {
	rules, err := f.tagged(tag)
	if err != nil {
		return false, err
	}
	for _, r := range rules {
		for _, e := range r.Exprs {
			imm, ok := e.(*expr.Immediate)
			if !ok || imm.Register != 1 || len(imm.Data) != 4 {
				continue
			}
			a := netip.AddrFrom4([4]byte(imm.Data))
			for _, p := range subnets {
				if p.Contains(a) {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// ruleCount counts the rules in stint's table (0 when it is missing).
func (f *firewall) ruleCount() (int, error) {
	n := 0
	for _, ch := range chains() {
		rules, err := f.c.GetRules(table, chainRef(ch.Name))
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("nftables: list chain %s %s: %w", TableName, ch.Name, err)
		}
		n += len(rules)
	}
	return n, nil
}
