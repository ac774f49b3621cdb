package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/lxdenv"
)

// TestRemoteClusterTarget: through the binary, against a real 3-member
// LXD cluster over HTTPS with a trust token, a job with target = "c2"
// runs on member c2 (seen by the cluster, while it runs), a matrix
// choosing the member with ${m} lands each variant where it says, and
// nothing of stint's is left on any member afterwards.
func TestRemoteClusterTarget(t *testing.T) {
	f := newCLI(t)
	cl := lxdenv.StartCluster(t)
	c1 := cl.Member("c1")
	out, code := f.run(t, "remote", "add", "lab", c1.URL, "--token", c1.TrustToken(t, "stint-cli-cluster"))
	require.Equal(t, 0, code, out)
	p := f.spec(t, `
[job.pinned]
image = "busybox"
target = "c2"
run = ["echo started", "sleep 4"]

[job.spread]
image = "busybox"
target = "${m}"
matrix = { m = ["c1", "c3"] }
run = ["echo started", "sleep 4"]
`)
	c := f.startUntil(t, "[pinned] started", "--remote", "lab", "run", "-j", "3", p)
	// Every instance with its member, as the cluster sees it.
	where := map[string]string{}
	require.Eventually(t, func() bool {
		list := c1.MustLxc(t, "list", "-c", "n,L,s", "-f", "csv")
		for _, l := range strings.Split(strings.TrimSpace(list), "\n") {
			if f := strings.Split(l, ","); len(f) == 3 && f[2] == "RUNNING" {
				where[f[0]] = f[1]
			}
		}
		return len(where) == 3
	}, 60*time.Second, 200*time.Millisecond, "three running instances")
	require.NoError(t, c.Wait(), "the run passed")
	var members []string
	for name, m := range where {
		switch {
		case strings.Contains(name, "pinned"):
			assert.Equal(t, "c2", m, name)
		case strings.Contains(name, "m-c1"):
			assert.Equal(t, "c1", m, name)
		case strings.Contains(name, "m-c3"):
			assert.Equal(t, "c3", m, name)
		default:
			t.Errorf("unexpected instance %s on %s", name, m)
		}
		members = append(members, m)
	}
	assert.ElementsMatch(t, []string{"c1", "c2", "c3"}, members)
	for _, m := range cl.Members {
		assert.Empty(t, strings.TrimSpace(m.MustLxc(t, "list", "-c", "n", "-f", "csv")), "nothing left, seen from %s", m.Name)
	}
}

// TestRemoteSpecKeysRefused: target without --remote, and host_user with
// one, are refused before anything is made: exit 2 naming the key at its
// file:line.
func TestRemoteSpecKeysRefused(t *testing.T) {
	f := newCLI(t)
	p := f.spec(t, `
[job.placed]
image = "busybox"
target = "c2"
run = ["true"]

[container.dev]
image = "busybox"
host_user = true
`)
	out, code := f.run(t, "run", p, "placed")
	assert.Equal(t, ExitUsage, code, out)
	assert.Regexp(t, `stint\.toml:\d+(:\d+)?: job\.placed\.target: target "c2" places it on a cluster member: it needs --remote`, out)
	out, code = f.run(t, "--remote", "nosuch", "apply", p)
	assert.Equal(t, ExitUsage, code, out)
	assert.Regexp(t, `stint\.toml:\d+(:\d+)?: container\.dev\.host_user: not supported on remote nosuch`, out)
	ents, _ := os.ReadDir(filepath.Join(f.root, "state"))
	assert.Empty(t, ents, "no record made")
}
