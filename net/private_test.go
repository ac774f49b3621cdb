package stintnet

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestPrivateBridgeName(t *testing.T) {
	in, out := PrivateBridge("stint-test-1a2b3c4d", false), PrivateBridge("stint-test-1a2b3c4d", true)
	assert.Len(t, in, 15, "an interface name's limit")
	assert.True(t, IsPrivateBridge(in) && IsPrivateBridge(out))
	assert.NotEqual(t, in, out)
	assert.True(t, internalBridge(in))
	assert.False(t, internalBridge(out))
	assert.False(t, IsPrivateBridge(DefaultBridge))
	assert.Equal(t, in, PrivateBridge("stint-test-1a2b3c4d", false), "derived from the name alone")
}

// dialFails asserts that nothing answers at addr within a short wait.
func dialFails(t *testing.T, addr, why string) {
	t.Helper()
	d := net.Dialer{Timeout: 700 * time.Millisecond}
	c, err := d.Dial("tcp", addr)
	if err == nil {
		c.Close()
	}
	assert.Error(t, err, why)
}

// TestPrivateBridgeIsolates: a job and its service on their private bridge
// reach each other (by address; the hosts file names the service), a
// container on another bridge does not reach the service, the internal
// bridge's job does not reach out, and once released the bridge, its rules
// and files go with RemovePrivate (or PrunePrivate).
func TestPrivateBridgeIsolates(t *testing.T) {
	host := freshNetns(t)
	m := openManager(t)
	ctx := t.Context()
	priv := PrivateBridge("job1", false)
	svc, err := m.AttachPrivate(ctx, Request{Container: "svc1", Hostname: "db", Bridge: priv})
	require.NoError(t, err)
	job, err := m.AttachPrivate(ctx, Request{Container: "job1", Bridge: priv})
	require.NoError(t, err)
	other, err := m.Attach(ctx, Request{Container: "other", Mode: ModeBridge})
	require.NoError(t, err)
	assert.Empty(t, job.Gateway, "an internal bridge gives no default route")
	assert.Contains(t, readFile(t, job.Hosts), svc.IPv4+"\tdb svc1\n")
	_, err = m.Attach(ctx, Request{Container: "x", Mode: ModeBridge, Bridge: priv})
	require.NoError(t, err, "a plain attach to an existing private bridge keeps its rules")
	require.NoError(t, m.Release(ctx, "x"))

	gw, err := m.List(ctx)
	require.NoError(t, err)
	nsSvc, nsJob, nsOther := newPeerNetns(t, host), newPeerNetns(t, host), newPeerNetns(t, host)
	// Give the internal leases a default route anyway, as a job's root
	// could: the firewall, not the routing table, keeps them in.
	for _, p := range []struct {
		l  *Lease
		ns netns.NsHandle
	}{{svc, nsSvc}, {job, nsJob}} {
		withGw := *p.l
		withGw.Gateway = gw.Bridges[priv].Gateway
		plug(t, &withGw, p.ns)
	}
	plug(t, other, nsOther)

	var ln, lnOther net.Listener
	inNetns(t, nsSvc, host, func() {
		ln, err = net.Listen("tcp", ":5432")
		require.NoError(t, err)
	})
	t.Cleanup(func() { ln.Close() })
	go serveRemoteAddr(ln)
	inNetns(t, nsOther, host, func() {
		lnOther, err = net.Listen("tcp", ":80")
		require.NoError(t, err)
	})
	t.Cleanup(func() { lnOther.Close() })
	go serveRemoteAddr(lnOther)

	inNetns(t, nsJob, host, func() {
		assert.Equal(t, job.IPv4, dialAndRead(t, ctx, net.JoinHostPort(svc.IPv4, "5432")), "the job reaches its service")
		dialFails(t, net.JoinHostPort(other.IPv4, "80"), "an internal bridge's job reached a container on another bridge")
	})
	inNetns(t, nsOther, host, func() {
		dialFails(t, net.JoinHostPort(svc.IPv4, "5432"), "a container on another bridge reached a job's service")
	})

	for _, c := range []string{"svc1", "job1"} {
		require.NoError(t, m.Release(ctx, c))
	}
	require.NoError(t, m.RemovePrivate(ctx, priv))
	require.NoError(t, m.RemovePrivate(ctx, priv), "idempotent")
	_, err = netlink.LinkByName(priv)
	assert.Error(t, err, "the private bridge is gone")
	assert.NotContains(t, nftList(t), priv, "its rules are gone")
	_, err = os.Stat(job.Hosts)
	assert.ErrorIs(t, err, os.ErrNotExist, "its files are gone")
	st, err := m.List(ctx)
	require.NoError(t, err)
	assert.NotContains(t, st.Bridges, priv)
	assert.Contains(t, st.Bridges, DefaultBridge, "another bridge stays")
}

// TestPrunePrivate: after a crash gc releases the leases, then PrunePrivate
// removes the private bridges nobody uses, and only those.
func TestPrunePrivate(t *testing.T) {
	freshNetns(t)
	m := openManager(t)
	ctx := t.Context()
	gone, kept := PrivateBridge("dead", true), PrivateBridge("live", true)
	_, err := m.AttachPrivate(ctx, Request{Container: "dead", Bridge: gone})
	require.NoError(t, err)
	l, err := m.AttachPrivate(ctx, Request{Container: "live", Bridge: kept})
	require.NoError(t, err)
	assert.NotEmpty(t, l.Gateway, "an outbound bridge routes out")
	st, err := m.List(ctx)
	require.NoError(t, err)
	assert.Contains(t, nftList(t), `ip saddr `+st.Bridges[kept].Subnet+` oifname != "`+kept+`" masquerade`)
	require.NoError(t, m.Release(ctx, "dead"))
	removed, err := m.PrunePrivate(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{gone}, removed)
	_, err = netlink.LinkByName(kept)
	assert.NoError(t, err, "a private bridge in use stays")
	_, err = netlink.LinkByName(gone)
	assert.Error(t, err)
}
