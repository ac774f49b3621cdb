package lxcrt_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/lxcrt"
)

// TestFailedStartLeavesNoCgroups: a start that fails (its bind source
// removed just before) sometimes leaves LXC's empty monitor and payload
// cgroups; after Destroy and RemoveCgroups none of the container's are
// left. The start error names the container once.
func TestFailedStartLeavesNoCgroups(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	for i := range 5 {
		name := fmt.Sprintf("stint-cgfail-%d-%d", os.Getpid(), i)
		src := filepath.Join(t.TempDir(), "src")
		require.NoError(t, os.Mkdir(src, 0o755))
		cfg := container.Config{Root: container.Root{Dir: f.rootfs}, IDMap: f.idmap, Privileged: f.idmap == nil,
			Mounts: []container.Mount{{Type: "bind", Source: src, Target: "/src"}}}
		require.NoError(t, f.rt.Create(ctx, name, cfg))
		require.NoError(t, os.Remove(src))
		err := f.rt.Start(ctx, name)
		require.Error(t, err, "start without its bind source")
		assert.Equal(t, 1, strings.Count(err.Error(), "start container "+name), err.Error())
		require.NoError(t, f.rt.Destroy(ctx, name))
		require.NoError(t, f.rt.RemoveCgroups(name))
		left, err := lxcrt.ContainerCgroups(name)
		require.NoError(t, err)
		assert.Empty(t, left, "cgroups of %s left", name)
		names, err := f.rt.CgroupNames()
		require.NoError(t, err)
		assert.NotContains(t, names, name, "%s still recorded as left", name)
	}
}
