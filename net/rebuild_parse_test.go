package stintnet

import (
	"net/netip"
	"testing"

	"github.com/google/nftables/expr"
	"github.com/stretchr/testify/assert"
	"golang.org/x/sys/unix"
)

// TestParseForward: a port rule as addPortRules writes it reads back as
// the port and the container's address it was made from.
func TestParseForward(t *testing.T) {
	addr := netip.MustParseAddr("10.88.0.130")
	for _, p := range []Port{
		{HostPort: 8080, ContainerPort: 80, Proto: "tcp"},
		{HostIP: "127.0.0.1", HostPort: 5353, ContainerPort: 53, Proto: "udp"},
	} {
		t.Run(p.String(), func(t *testing.T) {
			proto := byte(unix.IPPROTO_TCP)
			if p.Proto == "udp" {
				proto = unix.IPPROTO_UDP
			}
			dst := matchDaddrLocal()
			if p.HostIP != "" {
				dst = matchDaddr(netip.MustParseAddr(p.HostIP))
			}
			got, ok := parseForward(join(dst, matchPort(proto, uint16(p.HostPort)), dnat(addr, uint16(p.ContainerPort))))
			assert.True(t, ok)
			assert.Equal(t, forward{addr: addr, port: p}, got)
		})
	}
	_, ok := parseForward(join(matchSaddr(netip.MustParsePrefix("10.88.0.0/24")), masq()))
	assert.False(t, ok, "a bridge rule is no forward")
}

// TestParseSaddr: a bridge's masquerade rule gives its subnet back.
func TestParseSaddr(t *testing.T) {
	p := netip.MustParsePrefix("10.88.7.0/24")
	got, ok := parseSaddr(join(matchSaddr(p), matchIfname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, ifname("st")), masq()))
	assert.True(t, ok)
	assert.Equal(t, p, got)
	_, ok = parseSaddr(join(matchIfname(expr.MetaKeyIIFNAME, expr.CmpOpEq, ifname("st")), accept()))
	assert.False(t, ok)
}

// TestPayloadName: the container of a process from its cgroup file, on
// cgroup v1 (hybrid) and v2 hosts.
func TestPayloadName(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"0::/lxc.payload.stint-job-1a2b3c4d\n", "stint-job-1a2b3c4d"},
		{"4:memory:/lxc.payload.web/init.scope\n0::/lxc.payload.web\n", "web"},
		{"4:memory:/process_api/abc\n0::/\n", ""},
		{"0::/lxc.monitor.web\n", ""},
		{"", ""},
	} {
		assert.Equal(t, tc.want, payloadName([]byte(tc.file)), tc.file)
	}
}
