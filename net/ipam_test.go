package stintnet

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestPickSubnet(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bridges []string // subnets of existing stint bridges
		host    []netip.Prefix
		want    string
		err     error
	}{
		{name: "empty host", want: "10.88.0.0/24"},
		{name: "default route is no collision", host: prefixes("0.0.0.0/0", "192.0.2.0/24"), want: "10.88.0.0/24"},
		{name: "host route collides", host: prefixes("10.88.0.0/24"), want: "10.88.1.0/24"},
		{name: "host address inside", host: prefixes("10.88.0.77/32", "10.88.1.0/25"), want: "10.88.2.0/24"},
		{name: "wider host route covers a part", host: prefixes("10.88.0.0/23"), want: "10.88.2.0/24"},
		{name: "lxc's subnet is no concern", host: prefixes("10.0.3.0/24"), want: "10.88.0.0/24"},
		{name: "other stint bridge", bridges: []string{"10.88.0.0/24"}, want: "10.88.1.0/24"},
		{name: "whole range taken", host: prefixes("10.0.0.0/8"), err: ErrNoSubnet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newState()
			for i, s := range tc.bridges {
				st.Bridges[fmt.Sprint("br", i)] = &Bridge{Name: fmt.Sprint("br", i), Subnet: s}
			}
			got, err := pickSubnet(st, tc.host)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got.String())
		})
	}
}

func testBridge() *Bridge {
	return &Bridge{Name: "stint0", Subnet: "10.88.0.0/24", Gateway: "10.88.0.1"}
}

func TestAllocateDynamicUpperHalfFirst(t *testing.T) {
	st := newState()
	b := testBridge()
	seen := map[netip.Addr]bool{}
	// 253 usable addresses: .2-.254 (the gateway .1 is reserved).
	for i := 0; i < 253; i++ {
		c := fmt.Sprint("c", i)
		a, err := allocate(st, b, c, "")
		require.NoError(t, err, c)
		require.False(t, seen[a], "%s handed out twice", a)
		seen[a] = true
		if i < 127 {
			assert.GreaterOrEqual(t, a.As4()[3], byte(128), "dynamic addresses start in the upper half")
		}
		st.Leases[c] = &Lease{Container: c, Bridge: b.Name, IPv4: a.String()}
	}
	assert.False(t, seen[netip.MustParseAddr("10.88.0.1")], "gateway handed out")
	assert.False(t, seen[netip.MustParseAddr("10.88.0.0")], "network address handed out")
	assert.False(t, seen[netip.MustParseAddr("10.88.0.255")], "broadcast address handed out")
	_, err := allocate(st, b, "one-too-many", "")
	require.ErrorIs(t, err, ErrPoolExhausted)
}

func TestAllocateDoesNotReuseAtOnce(t *testing.T) {
	st := newState()
	b := testBridge()
	a1, err := allocate(st, b, "a", "")
	require.NoError(t, err)
	// "a" released (never stored); the next container gets another address.
	a2, err := allocate(st, b, "b", "")
	require.NoError(t, err)
	assert.NotEqual(t, a1, a2)
}

func TestAllocateFixed(t *testing.T) {
	st := newState()
	b := testBridge()
	st.Leases["web"] = &Lease{Container: "web", Bridge: "stint0", IPv4: "10.88.0.10"}
	st.Leases["other"] = &Lease{Container: "other", Bridge: "br1", IPv4: "10.88.0.11"}
	for _, tc := range []struct {
		name, container, ip, want string
		err                       error
	}{
		{name: "free", container: "db", ip: "10.88.0.20", want: "10.88.0.20"},
		{name: "on another bridge is free here", container: "db", ip: "10.88.0.11", want: "10.88.0.11"},
		{name: "own address again", container: "web", ip: "10.88.0.10", want: "10.88.0.10"},
		{name: "taken", container: "db", ip: "10.88.0.10", want: "10.88.0.10 is taken by container web: address in use", err: ErrAddressInUse},
		{name: "outside", container: "db", ip: "10.0.3.5", want: "ipv4 10.0.3.5 is outside bridge stint0's subnet 10.88.0.0/24: bad network request", err: ErrBadRequest},
		{name: "gateway", container: "db", ip: "10.88.0.1", err: ErrBadRequest},
		{name: "broadcast", container: "db", ip: "10.88.0.255", err: ErrBadRequest},
		{name: "network", container: "db", ip: "10.88.0.0", err: ErrBadRequest},
		{name: "not an address", container: "db", ip: "10.88.0.300", err: ErrBadRequest},
		{name: "ipv6", container: "db", ip: "fd00::1", err: ErrBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := allocate(st, b, tc.container, tc.ip)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				if tc.want != "" {
					assert.EqualError(t, err, tc.want)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got.String())
		})
	}
}

// TestConcurrentAllocation allocates from several goroutines, each with its
// own store on the same directory (as separate stint processes would): the
// file lock must give every container a distinct address and lose none.
func TestConcurrentAllocation(t *testing.T) {
	dir := t.TempDir()
	seed := &store{dir: dir}
	require.NoError(t, seed.update(func(st *State) error {
		st.Bridges["stint0"] = testBridge()
		return nil
	}))
	const workers, each = 8, 12
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &store{dir: dir}
			for i := 0; i < each; i++ {
				c := fmt.Sprintf("w%d-c%d", w, i)
				errs <- s.update(func(st *State) error {
					a, err := allocate(st, st.Bridges["stint0"], c, "")
					if err != nil {
						return err
					}
					st.Leases[c] = &Lease{Container: c, Bridge: "stint0", IPv4: a.String()}
					return nil
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	st, err := seed.read()
	require.NoError(t, err)
	require.Len(t, st.Leases, workers*each)
	byAddr := map[string]string{}
	for c, l := range st.Leases {
		if other, dup := byAddr[l.IPv4]; dup {
			t.Fatalf("%s given to both %s and %s", l.IPv4, other, c)
		}
		byAddr[l.IPv4] = c
	}
}

func TestConcurrentFixedConflict(t *testing.T) {
	dir := t.TempDir()
	seed := &store{dir: dir}
	require.NoError(t, seed.update(func(st *State) error {
		st.Bridges["stint0"] = testBridge()
		return nil
	}))
	const n = 6
	var wg sync.WaitGroup
	results := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := fmt.Sprint("web", i)
			results <- (&store{dir: dir}).update(func(st *State) error {
				a, err := allocate(st, st.Bridges["stint0"], c, "10.88.0.10")
				if err != nil {
					return err
				}
				st.Leases[c] = &Lease{Container: c, Bridge: "stint0", IPv4: a.String()}
				return nil
			})
		}()
	}
	wg.Wait()
	close(results)
	won := 0
	for err := range results {
		if err == nil {
			won++
			continue
		}
		require.True(t, errors.Is(err, ErrAddressInUse), "unexpected error: %v", err)
		assert.Contains(t, err.Error(), "10.88.0.10 is taken by container web")
	}
	assert.Equal(t, 1, won, "exactly one container gets the fixed address")
}
