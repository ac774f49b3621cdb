package stintnet

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// guardRange routes stint's whole range to nowhere in the test's namespace
// before anything is made there: an address that escapes the bridge goes
// nowhere.
func guardRange(t *testing.T) {
	t.Helper()
	_, guard, err := net.ParseCIDR(Range.String())
	require.NoError(t, err)
	require.NoError(t, netlink.RouteAdd(&netlink.Route{Dst: guard, Type: unix.RTN_UNREACHABLE}))
}

// garble writes a torn state file, as a full disk or a stray editor would.
func garble(t *testing.T, dir string) []byte {
	t.Helper()
	bad := []byte(`{"bridges": {"stint0": {"name": "stint0", "sub`)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "state.json"), bad, 0o644))
	return bad
}

// fakeContainer leaves running what LXC leaves for a container: a process
// titled like LXC's monitor (unless title is empty) whose child lives in
// network namespace ns. It returns once the child is there.
func fakeContainer(t *testing.T, ns netns.NsHandle, title string) {
	t.Helper()
	testenv.RequiresTool(t, "bash", "nsenter", "sleep")
	nsPath := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(ns))
	want, err := os.Readlink(nsPath)
	require.NoError(t, err)
	cmd := exec.Command("bash", "-c", "nsenter --net="+nsPath+" sleep 300 & wait")
	if title != "" {
		cmd.Args[0] = title
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
		var kid int
		if _, err := fmt.Sscan(string(kids), &kid); err == nil {
			if got, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", kid)); got == want {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the fake container's process did not enter its namespace")
}

// TestCorruptStateRebuilt: a torn state file is moved aside with a message
// and the state rebuilt from the kernel and the files: every live
// container keeps its address (by whichever evidence is left), a stopped
// one's address is held for it, nothing is handed out twice, and Release
// and Prune still leave nothing.
func TestCorruptStateRebuilt(t *testing.T) {
	host := freshNetns(t)
	guardRange(t)
	dir := t.TempDir()
	ctx := t.Context()
	m := openManagerAt(t, dir)
	attach := func(req Request) *Lease {
		req.Mode = ModeBridge
		l, err := m.Attach(ctx, req)
		require.NoError(t, err)
		return l
	}
	web := attach(Request{Container: "stint-p-web", Hostname: "web",
		Ports: []Port{{HostPort: 8080, ContainerPort: 80}, {HostIP: "127.0.0.1", HostPort: 5353, ContainerPort: 53, Proto: "udp"}}})
	odd := attach(Request{Container: "job[go=1.22]"}) // not a host name: not in the hosts file
	plain := attach(Request{Container: "plain"})      // nobody in its namespace: the hosts file tells
	anon := attach(Request{Container: "anon[x]"})     // no name anywhere: reserved
	stopped := attach(Request{Container: "stopped"})  // no veth: a stopped container
	svc := attach(Request{Container: "svc", Ports: []Port{{HostPort: 9090, ContainerPort: 90}}})
	gone := attach(Request{Container: "gone", Bridge: "stgone"})
	require.NoError(t, m.Release(ctx, "gone"))
	link, err := netlink.LinkByName("stgone") // lost by the kernel, rules and files left
	require.NoError(t, err)
	require.NoError(t, netlink.LinkDel(link))

	nsWeb, nsOdd, nsPlain, nsAnon := newPeerNetns(t, host), newPeerNetns(t, host), newPeerNetns(t, host), newPeerNetns(t, host)
	plug(t, web, nsWeb)
	plug(t, odd, nsOdd)
	plug(t, plain, nsPlain)
	plug(t, anon, nsAnon)
	fakeContainer(t, nsWeb, monitorPrefix+"/srv/stint/containers stint-p-web")
	fakeContainer(t, nsOdd, monitorPrefix+"/srv/other root/containers job[go=1.22]")
	fakeContainer(t, nsAnon, "")

	bad := garble(t, dir)
	m2 := openManagerAt(t, dir) // the next stint process
	var warn bytes.Buffer
	m2.SetWarnings(&warn)
	st, err := m2.List(ctx)
	require.NoError(t, err)
	t.Log(warn.String())

	aside, err := filepath.Glob(filepath.Join(dir, "state.json.corrupt-*"))
	require.NoError(t, err)
	require.Len(t, aside, 1)
	assert.Equal(t, string(bad), readFile(t, aside[0]), "the corrupt state is kept as it was")
	assert.Contains(t, warn.String(), "network state "+filepath.Join(dir, "state.json")+" is corrupt")
	assert.Contains(t, warn.String(), "moved it aside to "+aside[0]+" and rebuilt it from the kernel: 2 bridges, 4 leases, 2 reserved addresses")

	assert.Equal(t, &Bridge{Name: DefaultBridge, Subnet: "10.88.0.0/24", Gateway: "10.88.0.1"}, st.Bridges[DefaultBridge])
	require.Contains(t, st.Bridges, "stgone", "a bridge whose link is gone is rebuilt from its rules")
	assert.Equal(t, gone.Gateway, st.Bridges["stgone"].Gateway)

	web.Root, odd.Root = "/srv/stint", "/srv/other root" // from the LXC monitor's title
	assertLeases(t, st, web, odd, plain, svc)
	byAddr := map[string]*Reservation{}
	for _, r := range st.Reserved {
		byAddr[r.IPv4] = r
	}
	require.Len(t, byAddr, 2)
	assert.Equal(t, anon.HostVeth, byAddr[anon.IPv4].HostVeth)
	assert.Equal(t, []string{"stopped"}, byAddr[stopped.IPv4].Names)

	// Nothing is handed out twice.
	used := map[string]bool{web.IPv4: true, odd.IPv4: true, plain.IPv4: true, anon.IPv4: true, stopped.IPv4: true, svc.IPv4: true}
	for i := 0; i < 40; i++ {
		l, err := m2.Attach(ctx, Request{Container: fmt.Sprint("new-", i), Mode: ModeBridge})
		require.NoError(t, err)
		assert.False(t, used[l.IPv4], "%s handed out twice", l.IPv4)
		used[l.IPv4] = true
	}
	_, err = m2.Attach(ctx, Request{Container: "thief", Mode: ModeBridge, IPv4: anon.IPv4})
	require.ErrorIs(t, err, ErrAddressInUse)
	_, err = m2.Attach(ctx, Request{Container: "thief", Mode: ModeBridge, Ports: []Port{{HostPort: 8080, ContainerPort: 1}}})
	require.ErrorIs(t, err, ErrPortInUse, "a rebuilt lease keeps its published ports")
	// The stopped container starts again with its address.
	again, err := m2.Attach(ctx, Request{Container: "stopped", Mode: ModeBridge})
	require.NoError(t, err)
	assert.Equal(t, stopped.IPv4, again.IPv4)
	assert.Contains(t, readFile(t, web.Hosts), web.IPv4+"\tweb stint-p-web\n")

	// Release (by name only, as gc does) and Prune leave nothing.
	st, err = m2.List(ctx)
	require.NoError(t, err)
	for name := range st.Leases {
		require.NoError(t, m2.Release(ctx, name))
	}
	require.NoError(t, m2.Release(ctx, "anon[x]"))
	require.NoError(t, m2.Prune(ctx))
	st, err = m2.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, st.Leases)
	assert.Empty(t, st.Reserved)
	assert.Empty(t, st.Bridges)
	assert.Empty(t, nftList(t))
}

// TestCorruptStateFailsNoJob: with a garbled state, jobs of every mode (a
// none-mode teardown, a bridged attach) still work while several processes
// meet the corrupt file at once: one moves it aside, none fails.
func TestCorruptStateFailsNoJob(t *testing.T) {
	ns := freshNetns(t)
	guardRange(t)
	dir := t.TempDir()
	garble(t, dir)
	const workers = 6
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // dies with the goroutine, never back in the pool
			if err := netns.Set(ns); err != nil {
				errs <- err
				return
			}
			m, err := OpenDir(dir)
			if err != nil {
				errs <- err
				return
			}
			m.SetWarnings(&bytes.Buffer{})
			if w%2 == 0 {
				errs <- m.Release(context.Background(), fmt.Sprint("stint-none-", w))
				return
			}
			_, err = m.Attach(context.Background(), Request{Container: fmt.Sprint("stint-br-", w), Mode: ModeBridge})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	aside, err := filepath.Glob(filepath.Join(dir, "state.json.corrupt-*"))
	require.NoError(t, err)
	assert.Len(t, aside, 1, "the corrupt state was moved aside more than once")
	st, err := openManagerAt(t, dir).List(t.Context())
	require.NoError(t, err)
	assert.Len(t, st.Leases, workers/2)
}

// assertLeases: st holds exactly the leases want, as Attach made them.
func assertLeases(t *testing.T, st *State, want ...*Lease) {
	t.Helper()
	require.Len(t, st.Leases, len(want))
	for _, w := range want {
		got := st.Leases[w.Container]
		require.NotNil(t, got, w.Container)
		sort.Slice(got.Ports, func(i, j int) bool { return got.Ports[i].HostPort > got.Ports[j].HostPort })
		sort.Slice(w.Ports, func(i, j int) bool { return w.Ports[i].HostPort > w.Ports[j].HostPort })
		assert.Equal(t, leaseFacts(w), leaseFacts(got), w.Container)
	}
}

// leaseFacts is what the state must know of a lease: every field but the
// runtime's rendering of it.
func leaseFacts(l *Lease) Lease {
	return Lease{Container: l.Container, Root: l.Root, Hostname: l.Hostname, Mode: l.Mode, Bridge: l.Bridge,
		IPv4: l.IPv4, Gateway: l.Gateway, PrefixLen: l.PrefixLen, HostVeth: l.HostVeth, Ports: l.Ports,
		Hosts: l.Hosts, ResolvConf: l.ResolvConf}
}

// TestCorruptStateLeavesOtherStates: two state directories share the
// kernel (tests, a second STINT_NET_STATE). Rebuilding one's corrupt state
// adopts only its own bridges (those with its hosts file) and their
// containers, never the other's.
func TestCorruptStateLeavesOtherStates(t *testing.T) {
	host := freshNetns(t)
	guardRange(t)
	ctx := t.Context()
	mine, other := t.TempDir(), t.TempDir()
	a, b := openManagerAt(t, mine), openManagerAt(t, other)
	la, err := a.Attach(ctx, Request{Container: "ca", Mode: ModeBridge, Bridge: "stmine"})
	require.NoError(t, err)
	lb, err := b.Attach(ctx, Request{Container: "cb", Mode: ModeBridge, Bridge: "stother", Ports: []Port{{HostPort: 7070, ContainerPort: 70}}})
	require.NoError(t, err)
	plug(t, la, newPeerNetns(t, host))
	plug(t, lb, newPeerNetns(t, host))

	garble(t, mine)
	a2 := openManagerAt(t, mine)
	var warn bytes.Buffer
	a2.SetWarnings(&warn)
	st, err := a2.List(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"stmine"}, sortedKeys(st.Bridges))
	assertLeases(t, st, la)
	assert.Empty(t, st.Reserved)
	assert.Contains(t, warn.String(), "bridge stother is stint's but has no hosts file in "+mine)

	// The other state is untouched, and so is its container.
	stb, err := b.List(ctx)
	require.NoError(t, err)
	assertLeases(t, stb, lb)
	require.NoError(t, a2.Release(ctx, "ca"))
	require.NoError(t, a2.Prune(ctx))
	assert.Contains(t, nftList(t), "dnat to "+lb.IPv4+":70", "the other state's forward went with the rebuilt one's prune")
	_, err = netlink.LinkByName(lb.HostVeth)
	assert.NoError(t, err, "the other state's veth went with the rebuilt one's prune")
}
