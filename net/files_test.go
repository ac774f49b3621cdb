package stintnet

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func TestVethName(t *testing.T) {
	a := VethName("stint-myproject-test-0123456789abcdef")
	assert.LessOrEqual(t, len(a), 15, "IFNAMSIZ-1")
	assert.Regexp(t, vethRE, a)
	assert.Equal(t, a, VethName("stint-myproject-test-0123456789abcdef"), "deterministic")
	assert.NotEqual(t, a, VethName("stint-myproject-test-0123456789abcdee"))
}

func TestRenderHosts(t *testing.T) {
	st := newState()
	b := testBridge()
	st.Bridges[b.Name] = b
	st.Leases["stint-proj-web"] = &Lease{Container: "stint-proj-web", Hostname: "web", Bridge: "stint0", IPv4: "10.88.0.10"}
	st.Leases["stint-proj-db"] = &Lease{Container: "stint-proj-db", Hostname: "db", Bridge: "stint0", IPv4: "10.88.0.9"}
	st.Leases["job"] = &Lease{Container: "job", Bridge: "stint0", IPv4: "10.88.0.130"}
	st.Leases["test[go=1.22]"] = &Lease{Container: "test[go=1.22]", Bridge: "stint0", IPv4: "10.88.0.131"} // no valid name: no entry
	st.Leases["elsewhere"] = &Lease{Container: "elsewhere", Bridge: "br1", IPv4: "10.88.1.130"}            // other bridge: no entry
	golden(t, "hosts.golden", renderHosts(st, b))
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(p, got, 0o644))
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
}

func TestRenderResolv(t *testing.T) {
	for _, name := range []string{"plain", "resolved", "dnsmasq"} {
		t.Run(name, func(t *testing.T) {
			host, err := os.ReadFile(filepath.Join("testdata/resolv", name+".host"))
			require.NoError(t, err)
			upstream, _ := os.ReadFile(filepath.Join("testdata/resolv", name+".upstream"))
			golden(t, filepath.Join("resolv", name+".want"), renderResolv(host, upstream, "10.88.0.1"))
		})
	}
}

// TestWriteInPlaceKeepsInode: the hosts file is bind-mounted into running
// containers, which would keep seeing the old file after a rename.
func TestWriteInPlaceKeepsInode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "br", "hosts")
	require.NoError(t, writeInPlace(p, []byte(strings.Repeat("long line\n", 20))))
	before := inode(t, p)
	require.NoError(t, writeInPlace(p, []byte("short\n")))
	assert.Equal(t, before, inode(t, p), "rewritten by rename, not in place")
	got, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "short\n", string(got), "old content left past the new end")
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  Request
		err  string
	}{
		{name: "no name", req: Request{Mode: "bridge"}, err: "network request without a container name: bad network request"},
		{name: "bad mode", req: Request{Container: "c", Mode: "macvlan"}, err: `container c: network mode "macvlan": want none, host or bridge: bad network request`},
		{name: "ports without bridge", req: Request{Container: "c", Mode: "host", Ports: []Port{{HostPort: 80, ContainerPort: 80}}}, err: "container c: ports need network mode bridge, not host: bad network request"},
		{name: "ipv4 without bridge", req: Request{Container: "c", IPv4: "10.88.0.5"}, err: "container c: bridge and ipv4 need network mode bridge, not none: bad network request"},
		{name: "long bridge name", req: Request{Container: "c", Mode: "bridge", Bridge: "a-very-long-bridge"}, err: `container c: bridge name "a-very-long-bridge": want up to 15 letters, digits, '_', '.', '-': bad network request`},
		{name: "bad proto", req: Request{Container: "c", Mode: "bridge", Ports: []Port{{HostPort: 80, ContainerPort: 80, Proto: "sctp"}}}, err: "container c: port 80:80/sctp: protocol must be tcp or udp: bad network request"},
		{name: "port range", req: Request{Container: "c", Mode: "bridge", Ports: []Port{{HostPort: 0, ContainerPort: 80}}}, err: "container c: port 0:80/tcp: ports must be 1-65535: bad network request"},
		{name: "twice", req: Request{Container: "c", Mode: "bridge", Ports: []Port{{HostPort: 80, ContainerPort: 80}, {HostPort: 80, ContainerPort: 81, Proto: "tcp"}}}, err: "container c: port 80/tcp published twice: bad network request"},
		{name: "host ip v6", req: Request{Container: "c", Mode: "bridge", Ports: []Port{{HostIP: "::1", HostPort: 80, ContainerPort: 80}}}, err: "container c: port ::1:80:80/tcp: host address must be IPv4: bad network request"},
		{name: "defaults", req: Request{Container: "c", Mode: "bridge", Ports: []Port{{HostPort: 8080, ContainerPort: 80}}}},
		{name: "none by default", req: Request{Container: "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := normalize(tc.req)
			if tc.err != "" {
				require.ErrorIs(t, err, ErrBadRequest)
				assert.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			if tc.req.Mode == "" {
				assert.Equal(t, ModeNone, got.Mode)
				return
			}
			assert.Equal(t, DefaultBridge, got.Bridge)
			assert.Equal(t, "c", got.Hostname)
			assert.Equal(t, "tcp", got.Ports[0].Proto)
		})
	}
}

func TestLeaseJSONRoundTrip(t *testing.T) {
	l := &Lease{Container: "c", Mode: ModeBridge, Bridge: "stint0", IPv4: "10.88.0.130", Gateway: "10.88.0.1", PrefixLen: 24,
		HostVeth: VethName("c"), Ports: []Port{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}},
	}
	b, err := json.Marshal(l)
	require.NoError(t, err)
	var back Lease
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, *l, back)
}

func TestModesNeedNoRoot(t *testing.T) {
	m, err := OpenDir(t.TempDir())
	require.NoError(t, err)
	l, err := m.Attach(t.Context(), Request{Container: "c"})
	require.NoError(t, err)
	assert.Equal(t, &Lease{Container: "c", Mode: ModeNone}, l)
	l, err = m.Attach(t.Context(), Request{Container: "c", Mode: ModeHost})
	require.NoError(t, err)
	assert.Equal(t, ModeHost, l.Mode)
	assert.Equal(t, "/etc/resolv.conf", l.ResolvConf)
	require.NoError(t, m.Release(t.Context(), "c"), "release of a container without a lease")
}
