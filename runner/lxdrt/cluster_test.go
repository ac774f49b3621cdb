package lxdrt_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/lxdenv"
	"github.com/stintdev/stint/remote"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/container/containertest"
	"github.com/stintdev/stint/runner/lxdrt"
)

// TestCluster: a real 3-member cluster reached over HTTPS with a trust
// token: placement with a target, cache volumes on a member, a member
// down (a job targeted at it fails clearly, untargeted jobs still run),
// and nothing of stint's left on any member.
func TestCluster(t *testing.T) {
	cl := lxdenv.StartCluster(t)
	c1 := cl.Member("c1")
	ctx := context.Background()
	s, err := remote.Open(t.TempDir())
	require.NoError(t, err)
	r, err := s.Add(ctx, "lab", c1.URL, remote.AddOptions{Token: c1.TrustToken(t, "stint-cluster-test")})
	require.NoError(t, err)
	conn, err := s.Connect(ctx, r)
	require.NoError(t, err)
	t.Cleanup(conn.Disconnect)
	require.True(t, conn.IsClustered())
	rt := runtime(t, conn, lxdrt.Options{Remote: "lab"})

	location := func(name string) string {
		insts, err := rt.Instances(ctx)
		require.NoError(t, err)
		for _, i := range insts {
			if i.Name == name {
				return i.Location
			}
		}
		return ""
	}
	job := func(t *testing.T, target, script string, cfg container.Config) (string, string) {
		t.Helper()
		name := run(t, rt, cfg, lxdrt.CreateOptions{Target: target})
		out, st := sh(t, rt, name, script)
		require.True(t, st.Success(), out)
		return name, out
	}

	t.Run("Target", func(t *testing.T) {
		name, out := job(t, "c2", "echo on $(hostname)", container.Config{})
		assert.Equal(t, "c2", location(name))
		assert.Equal(t, "on "+lxdrt.InstanceName(name)+"\n", out)
		require.NoError(t, rt.Destroy(ctx, name))
	})

	t.Run("CacheOnMember", func(t *testing.T) {
		cache := "clcache-" + strconv.Itoa(os.Getpid())
		cfg := container.Config{Mounts: []container.Mount{{Type: container.MountVolume, Volume: cache, Target: "/cache"}}}
		first, _ := job(t, "c3", "echo kept > /cache/x", cfg)
		require.NoError(t, rt.Destroy(ctx, first))
		second, out := job(t, "c3", "cat /cache/x", cfg)
		assert.Equal(t, "kept\n", out)
		require.NoError(t, rt.Destroy(ctx, second))
		vols, err := rt.Volumes(ctx)
		require.NoError(t, err)
		require.Len(t, vols, 1)
		assert.Equal(t, "c3", vols[0].Location)
		require.NoError(t, rt.DeleteVolume(ctx, vols[0]))
	})

	t.Run("Untargeted", func(t *testing.T) {
		name, out := job(t, "", "echo placed", container.Config{})
		assert.Equal(t, "placed\n", out)
		assert.Contains(t, []string{"c1", "c2", "c3"}, location(name))
		require.NoError(t, rt.Destroy(ctx, name))
	})

	t.Run("UnknownTarget", func(t *testing.T) {
		name := containertest.Name(t)
		err := rt.CreateWith(ctx, name, container.Config{Root: container.Root{Image: busybox(t)}}, lxdrt.CreateOptions{Target: "c9"})
		require.Error(t, err)
		t.Log(err)
		var ue *lxdrt.UsageError
		require.ErrorAs(t, err, &ue, "a member that doesn't exist is the user's mistake")
		assert.Contains(t, err.Error(), "c9")
	})

	nothingLeft(t, cl, []string{"c1", "c2", "c3"})

	t.Run("MemberDown", func(t *testing.T) {
		cl.Member("c3").Stop(t)
		name := containertest.Name(t)
		start := time.Now()
		err := rt.CreateWith(ctx, name, container.Config{Root: container.Root{Image: busybox(t)}}, lxdrt.CreateOptions{Target: "c3"})
		require.Error(t, err, "a job targeted at a member that is down")
		t.Log(err)
		var re *lxdrt.Error
		require.ErrorAs(t, err, &re)
		assert.Equal(t, 3, re.ExitCode())
		assert.Contains(t, err.Error(), `remote "lab"`)
		assert.Less(t, time.Since(start), 60*time.Second)
		st, err := rt.State(ctx, name)
		require.NoError(t, err)
		assert.Equal(t, container.StateAbsent, st, "nothing left of the failed job")

		// Once the cluster knows c3 is offline, the scheduler places
		// untargeted jobs on the others.
		require.Eventually(t, func() bool {
			out, _ := c1.Lxc(ctx, "cluster", "list", "-f", "csv")
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "c3,") {
					return strings.Contains(l, "OFFLINE")
				}
			}
			return false
		}, 150*time.Second, time.Second)
		for range 2 {
			name, out := job(t, "", "echo still", container.Config{})
			assert.Equal(t, "still\n", out)
			assert.Contains(t, []string{"c1", "c2"}, location(name))
			require.NoError(t, rt.Destroy(ctx, name))
		}
	})
	nothingLeft(t, cl, []string{"c1", "c2"})
}

// nothingLeft checks every listed member for stint's instances and cache
// volumes, with the lxc client (not the code under test).
func nothingLeft(t *testing.T, cl *lxdenv.Cluster, members []string) {
	t.Helper()
	for _, m := range members {
		mem := cl.Member(m)
		list := mem.MustLxc(t, "list", "-c", "n,L", "-f", "csv")
		assert.NotContains(t, list, "ct-", "instances left, seen from %s", m)
		vols := mem.MustLxc(t, "storage", "volume", "list", cl.Pool, "-f", "csv")
		assert.NotContains(t, vols, "stint-cache", "volumes left, seen from %s", m)
	}
}
