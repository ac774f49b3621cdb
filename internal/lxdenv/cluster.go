package lxdenv

import (
	"context"
	_ "embed"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"
	"github.com/stintdev/stint/internal/testenv"
)

// The cluster recipe, copied from ../shared/lxdcluster (which CI can't
// write to) with the changes each script's header names.
var (
	//go:embed cluster-up.sh
	clusterUp []byte
	//go:embed cluster-down.sh
	clusterDown []byte
	//go:embed lxd-in-netns.sh
	lxdInNetns []byte
)

// Cluster is a 3-member LXD cluster on this host: members c1..c3, each a
// daemon in its own network namespace on a test bridge, a dir pool "local"
// on every member, no managed network.
type Cluster struct {
	Prefix  string // names the bridge (<prefix>br0), namespaces and dirs
	Net     string // the members' /24, as "10.77.N"
	Pool    string // "local"
	Members []*Member
	scripts string
}

// Member is one cluster member.
type Member struct {
	Name   string // c1, c2, c3
	Daemon        // Dir (/var/lib/<prefix>-cN), Socket, URL (https://10.77.N.1x:8443)
}

// clusterLock serialises clusters between test binaries on this host: the
// recipe's /16 guard route and the bridges' /24s are host-wide.
const clusterLock = "/run/lock/stint-lxdenv-cluster.lock"

// StartCluster forms a cluster for t (about 5 s) and tears it down when t
// ends. It holds a host-wide lock meanwhile, so clusters of two test
// binaries run one after the other.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	Requires(t)
	testenv.RequiresTool(t, "ip", "findmnt")
	if err := os.MkdirAll(filepath.Dir(clusterLock), 0o755); err != nil {
		t.Fatalf("lxdenv: %v", err)
	}
	lk := flock.New(clusterLock)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if ok, err := lk.TryLockContext(ctx, 500*time.Millisecond); !ok || err != nil {
		t.Fatalf("lxdenv: cluster lock %s: %v", clusterLock, err)
	}
	t.Cleanup(func() { _ = lk.Unlock() })
	sweep(t)
	scripts := writeScripts(t)
	sweepClusters(t, scripts)
	c := &Cluster{Prefix: fmt.Sprintf("stc%d", os.Getpid()%100000), Pool: "local", scripts: scripts}
	var err error
	if c.Net, err = freeNet(); err != nil {
		t.Fatalf("lxdenv: %v", err)
	}
	// A record of the cluster, so that the next StartCluster tears it down
	// if this process dies without its cleanup.
	rec := filepath.Join(clusterRecords, c.Prefix)
	if err := os.MkdirAll(clusterRecords, 0o755); err != nil {
		t.Fatalf("lxdenv: %v", err)
	}
	if err := os.WriteFile(rec, fmt.Appendf(nil, "%d %s\n", os.Getpid(), c.Net), 0o644); err != nil {
		t.Fatalf("lxdenv: %v", err)
	}
	t.Cleanup(func() {
		if out, err := c.script("cluster-down.sh"); err != nil {
			t.Errorf("lxdenv: cluster-down: %v\n%s", err, out)
			return
		}
		os.Remove(rec)
	})
	out, err := c.script("cluster-up.sh")
	if err != nil {
		t.Fatalf("lxdenv: cluster-up: %v\n%s", err, out)
	}
	for i := 1; i <= 3; i++ {
		dir := fmt.Sprintf("/var/lib/%s-c%d", c.Prefix, i)
		c.Members = append(c.Members, &Member{Name: fmt.Sprintf("c%d", i), Daemon: Daemon{
			Dir: dir, Socket: filepath.Join(dir, "unix.socket"), Pool: c.Pool,
			URL:  fmt.Sprintf("https://%s.1%d:8443", c.Net, i),
			conf: fmt.Sprintf("/var/lib/%s-lxcconf", c.Prefix),
		}})
	}
	return c
}

func (c *Cluster) script(name string) (string, error) {
	return runScript(c.scripts, name, c.Prefix, c.Net)
}

func runScript(dir, name, prefix, network string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, name))
	cmd.Env = append(os.Environ(), "LXDC_PREFIX="+prefix, "LXDC_NET="+network, "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// clusterRecords holds one file per cluster up ("PID NET", named by its
// prefix), removed by its teardown.
const clusterRecords = "/run/stint-lxdenv-clusters"

// writeScripts writes the recipe's scripts into a temporary directory
// removed when t ends.
func writeScripts(t testing.TB) string {
	dir, err := os.MkdirTemp("", dirPrefix+"scripts-")
	if err != nil {
		t.Fatalf("lxdenv: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// sweep removes it if this process dies without its cleanup.
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatalf("lxdenv: %v", err)
	}
	for name, b := range map[string][]byte{"cluster-up.sh": clusterUp, "cluster-down.sh": clusterDown, "lxd-in-netns.sh": lxdInNetns} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			t.Fatalf("lxdenv: %v", err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("lxdenv: %v", err)
	}
	return dir
}

// sweepClusters tears down clusters whose test process died without its
// cleanup (a test binary killed by its timeout), from their records.
// Called under the cluster lock, so no live cluster is being built.
func sweepClusters(t testing.TB, scripts string) {
	ents, _ := os.ReadDir(clusterRecords)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(clusterRecords, e.Name()))
		f := strings.Fields(string(b))
		if err != nil || len(f) != 2 {
			continue
		}
		if pid, err := strconv.Atoi(f[0]); err != nil || alive(pid) {
			continue
		}
		if out, err := runScript(scripts, "cluster-down.sh", e.Name(), f[1]); err != nil {
			t.Logf("lxdenv: sweep cluster %s: %v\n%s", e.Name(), err, out)
			continue
		}
		os.Remove(filepath.Join(clusterRecords, e.Name()))
	}
}

// Member returns the member called name (c1..c3).
func (c *Cluster) Member(name string) *Member {
	for _, m := range c.Members {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// Stop shuts member m down (`lxd shutdown`), as a failed machine: the
// others keep quorum, and the cluster marks it offline after about 40 s.
func (m *Member) Stop(t testing.TB) {
	t.Helper()
	if _, err := m.run(context.Background(), nil, "lxd", "shutdown", "--timeout", "60"); err != nil {
		t.Fatalf("lxdenv: stop %s: %v", m.Name, err)
	}
}

// freeNet picks a /24 in 10.77.100.0-10.77.199.0 that no address on this
// host is in.
func freeNet() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	used := map[string]bool{}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			ip := ipn.IP.To4()
			used[fmt.Sprintf("%d.%d.%d", ip[0], ip[1], ip[2])] = true
		}
	}
	start := 100 + os.Getpid()%100
	for i := 0; i < 100; i++ {
		n := "10.77." + strconv.Itoa(100+(start-100+i)%100)
		if !used[n] {
			return n, nil
		}
	}
	return "", fmt.Errorf("no free /24 in 10.77.100.0/17: %s", strings.Join(keys(used), ", "))
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
