package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/stintdev/stint/internal/nettest"
	stintnet "github.com/stintdev/stint/net"
)

// dbService is a service answering "pong" on port 5432 (busybox nc, a
// new echo per connection), listening only after two seconds: a job line
// run before its ready check passed would find nothing there.
const dbService = `
[service.db]
image = "busybox"
command = ["/bin/sh", "-c", "sleep 2; exec nc -ll -p 5432 -e /bin/busybox echo pong"]
ready = "nc 127.0.0.1 5432 </dev/null | grep -q pong"
ready_timeout = "60s"
`

// privateBridges lists the private bridges in the kernel.
func privateBridges(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	require.NoError(t, err)
	var out []string
	for _, l := range links {
		if stintnet.IsPrivateBridge(l.Attrs().Name) {
			out = append(out, l.Attrs().Name)
		}
	}
	return out
}

// assertNoServiceNetwork checks that nothing of a job's private network
// is left: no private bridge of the root's state, its link, rules or files,
// no lease.
func assertNoServiceNetwork(t *testing.T, root string, before []string) {
	t.Helper()
	st := netState(t, root)
	assert.Empty(t, st.Leases, "leases left")
	for b := range st.Bridges {
		assert.False(t, stintnet.IsPrivateBridge(b), "private bridge %s left in the state", b)
	}
	assert.ElementsMatch(t, before, privateBridges(t), "private bridges left in the kernel")
	rules := nettest.NftRules(t)
	for _, b := range privateBridges(t) {
		if !contains(before, b) {
			assert.NotContains(t, rules, b, "rules of %s left", b)
		}
	}
	ents, _ := filepath.Glob(filepath.Join(root, "net", "sj*"))
	assert.Empty(t, ents, "private bridge files left")
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	require.NoError(t, err)
	return a
}

// TestCLIServiceByName: a job (network none) reaches its service by name,
// and only after the ready check passed, as does a job of network host
// (its own db); a job on another bridge, given the service's address, does
// not reach it. Nothing is left afterwards.
func TestCLIServiceByName(t *testing.T) {
	f, br := netCLI(t)
	before := privateBridges(t)
	shared := filepath.Join(f.dir, "shared")
	require.NoError(t, os.Mkdir(shared, 0o777))
	require.NoError(t, os.Chmod(shared, 0o777)) // the jobs' mapped roots write here
	p := f.spec(t, dbService+`
[job.test]
image = "busybox"
services = ["db"]
run = [
  "nc db 5432 </dev/null",
  "grep -w db /etc/hosts | cut -f1 > /shared/addr",
  "i=0; while [ ! -f /shared/done ] && [ $i -lt 300 ]; do sleep 0.2; i=$((i+1)); done",
]
[[job.test.mount]]
source = "shared"
target = "/shared"

[job.hostnet]
image = "busybox"
network = "host"
services = ["db"]
run = ["nc db 5432 </dev/null"]

[job.other]
image = "busybox"
network = { mode = "bridge", bridge = "`+br+`" }
run = [
  "i=0; while [ ! -s /shared/addr ] && [ $i -lt 300 ]; do sleep 0.2; i=$((i+1)); done",
  "if nc -w 3 $(cat /shared/addr) 5432 </dev/null | grep -q pong; then echo REACHED; else echo REFUSED; fi; touch /shared/done",
]
[[job.other.mount]]
source = "shared"
target = "/shared"
`)
	out, code := f.run(t, "run", p, "-j", "3")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "[test] pong", "the job reaches db by name once it is ready")
	assert.Contains(t, out, "[hostnet] pong", "a host-network job reaches its own db by name")
	addr, err := os.ReadFile(filepath.Join(shared, "addr"))
	require.NoError(t, err)
	assert.True(t, stintnet.Range.Contains(mustAddr(t, strings.TrimSpace(string(addr)))), "db's address %q", addr)
	assert.Contains(t, out, "[other] REFUSED", "another job reached the service")
	assert.NotContains(t, out, "REACHED")
	// Each log names its job, a service's console JOB/SERVICE (stint logs test/db).
	names, err := filepath.Glob(filepath.Join(f.root, "logs", "*.job"))
	require.NoError(t, err)
	var named []string
	for _, n := range names {
		b, err := os.ReadFile(n)
		require.NoError(t, err)
		assert.FileExists(t, strings.TrimSuffix(n, ".job")+".log")
		named = append(named, strings.TrimSpace(string(b)))
	}
	assert.ElementsMatch(t, []string{"test", "test/db", "hostnet", "hostnet/db", "other"}, named)
	out, code = f.run(t, "logs", "test/db")
	assert.Equal(t, 0, code, out)
	f.assertClean(t)
	assertNoServiceNetwork(t, f.root, before)
}

// TestCLIServiceNotReady: a ready check that never passes fails the job
// (exit 1) naming the service, its check and its timeout, before any line
// runs; an unknown service is a spec error (exit 2 at file:line).
func TestCLIServiceNotReady(t *testing.T) {
	f, _ := netCLI(t)
	before := privateBridges(t)
	p := f.spec(t, `
[service.db]
image = "busybox"
command = ["/bin/sleep", "600"]
ready = "echo checking; exit 3"
ready_timeout = "2s"

[job.test]
image = "busybox"
services = ["db"]
run = ["echo FIRST LINE RAN"]
`)
	out, code := f.run(t, "run", p)
	require.Equal(t, 1, code, out)
	assert.Contains(t, out, `service db: not ready after 2s: ready check "echo checking; exit 3": exit 3: checking`)
	assert.NotContains(t, out, "FIRST LINE RAN")
	f.assertClean(t)
	assertNoServiceNetwork(t, f.root, before)

	p = f.spec(t, dbService+`
[job.test]
image = "busybox"
services = ["bd"]
run = ["true"]
`)
	out, code = f.run(t, "run", p)
	require.Equal(t, 2, code, out)
	assert.Regexp(t, `stint.toml:\d+:\d+: job.test.services\[0\]: unknown service "bd"; did you mean "db"\?`, out)
}

// TestCLIServiceKill9ThenGC: a run killed with -9 while its job runs
// leaves the job, its service and their private network; `stint gc`
// removes them all: containers, records, clones, veths, leases, the bridge
// and its rules.
func TestCLIServiceKill9ThenGC(t *testing.T) {
	f, _ := netCLI(t)
	before := privateBridges(t)
	p := f.spec(t, dbService+`
[job.long]
image = "busybox"
network = "bridge"
services = ["db"]
run = ["nc db 5432 </dev/null", "echo started", "sleep 600"]
`)
	c := f.startUntil(t, "[long] started", "run", p)
	require.NoError(t, c.Process.Signal(syscall.SIGKILL))
	_ = c.Wait()
	all, err := os.ReadDir(filepath.Join(f.root, "containers"))
	require.NoError(t, err)
	var ents []os.DirEntry
	for _, e := range all {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") { // a service's staged init is beside it
			ents = append(ents, e)
		}
	}
	require.Len(t, ents, 2, "the killed run should have left its job and its service")
	st := netState(t, f.root)
	require.Len(t, st.Leases, 2)
	var priv string
	for b := range st.Bridges {
		if stintnet.IsPrivateBridge(b) {
			priv = b
		}
	}
	require.NotEmpty(t, priv, "the job's private bridge")
	assert.Contains(t, nettest.NftRules(t), `"stint bridge `+priv+`"`)

	out, code := f.run(t, "gc")
	require.Equal(t, 0, code, out)
	for _, e := range ents {
		assert.Contains(t, out, "removed "+e.Name())
		_, err := netlink.LinkByName(stintnet.VethName(e.Name()))
		assert.Error(t, err, "veth of %s left", e.Name())
	}
	nettest.AssertBridgeGone(t, priv)
	f.assertClean(t)
	assertNoServiceNetwork(t, f.root, before)
}

// TestCLIServiceSIGTERMWhileNotReady: SIGTERM while a service's ready
// check is still failing stops the run without running the job, and
// leaves nothing of the service or its network.
func TestCLIServiceSIGTERMWhileNotReady(t *testing.T) {
	f, _ := netCLI(t)
	before := privateBridges(t)
	p := f.spec(t, `
[service.db]
image = "busybox"
command = ["/bin/sleep", "600"]
ready = "false"
ready_timeout = "10m"

[job.test]
image = "busybox"
services = ["db"]
run = ["echo FIRST LINE RAN"]
`)
	var out strings.Builder
	c := f.cmd("run", p)
	c.Stdout, c.Stderr = &out, &out
	require.NoError(t, c.Start())
	t.Cleanup(func() { _ = c.Process.Kill() }) // only if the test failed before SIGTERM
	deadline := time.Now().Add(60 * time.Second)
	for len(netState(t, f.root).Leases) == 0 {
		require.True(t, time.Now().Before(deadline), "the service never got its network:\n%s", out.String())
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // a few ready checks fail
	require.NoError(t, c.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("stint run did not stop on SIGTERM:\n%s", out.String())
	}
	assert.NotContains(t, out.String(), "FIRST LINE RAN")
	assert.Regexp(t, `ABORTED +test .*aborted while starting services`, out.String())
	f.assertClean(t)
	assertNoServiceNetwork(t, f.root, before)
}

// TestCLIServiceKeptJob: a failed job kept for inspection keeps only its
// own container (on its private bridge): its service goes at once, and
// `stint gc --kept` removes the job and then the bridge.
func TestCLIServiceKeptJob(t *testing.T) {
	f, _ := netCLI(t)
	before := privateBridges(t)
	p := f.spec(t, dbService+`
[job.test]
image = "busybox"
services = ["db"]
keep_on_failure = true
run = ["nc db 5432 </dev/null", "exit 4"]
`)
	out, code := f.run(t, "run", p)
	require.Equal(t, 1, code, out)
	assert.Contains(t, out, "[test] pong")
	st := netState(t, f.root)
	require.Len(t, st.Leases, 1, "only the kept job's lease is left")
	for name := range st.Leases {
		assert.True(t, strings.HasPrefix(name, "stint-test-") && !strings.HasPrefix(name, "stint-test-db-"), name)
	}
	out, code = f.run(t, "gc", "--kept")
	require.Equal(t, 0, code, out)
	f.assertClean(t)
	assertNoServiceNetwork(t, f.root, before)
}
