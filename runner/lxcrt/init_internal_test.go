package lxcrt

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner/container"
)

// A command's workdir and ids become lxc.init.cwd, uid and gid; root in /
// adds nothing, and a booted init stays root.
func TestRenderInitUserAndWorkdir(t *testing.T) {
	cmd := container.Init{Kind: container.InitCommand, Command: []string{"/app"}}
	keys := func(lines []kv) map[string]string {
		out := map[string]string{}
		for _, l := range lines {
			out[l.k] = l.v
		}
		return out
	}
	lines, err := renderInit("c", cmd)
	require.NoError(t, err)
	assert.NotContains(t, keys(lines), "lxc.init.cwd")
	assert.NotContains(t, keys(lines), "lxc.init.uid")

	cmd.Workdir, cmd.UID, cmd.GID = "/srv/app", 1234, 2345
	lines, err = renderInit("c", cmd)
	require.NoError(t, err)
	k := keys(lines)
	assert.Equal(t, "/srv/app", k["lxc.init.cwd"])
	assert.Equal(t, "1234", k["lxc.init.uid"])
	assert.Equal(t, "2345", k["lxc.init.gid"])

	lines, err = renderInit("c", container.Init{Kind: container.InitBoot, Workdir: "/srv", UID: 5})
	require.NoError(t, err)
	assert.NotContains(t, keys(lines), "lxc.init.uid")
}

// The start script belongs to the user it runs as, as the host sees that
// user: shifted by the id map (its hole 1:1), root's own in a privileged
// container, refused outside the map.
func TestScriptOwner(t *testing.T) {
	m := &container.IDMap{HostUID: 100000, HostGID: 200000, Size: 65536}
	holed := &container.IDMap{HostUID: 100000, HostGID: 200000, Size: 65536, Hole: &container.IDHole{UID: 1000, GID: 1000}}
	for _, tc := range []struct {
		name     string
		cfg      container.Config
		uid, gid int
		mapped   bool
		bad      bool
	}{
		{"root, unprivileged", container.Config{IDMap: m}, 100000, 200000, true, false},
		{"user, unprivileged", container.Config{IDMap: m, Init: container.Init{UID: 1234, GID: 2345}}, 101234, 202345, true, false},
		{"the hole", container.Config{IDMap: holed, Init: container.Init{UID: 1000, GID: 1000}}, 1000, 1000, true, false},
		{"root, privileged", container.Config{Privileged: true}, 0, 0, false, false},
		{"user, privileged", container.Config{Privileged: true, Init: container.Init{UID: 7, GID: 8}}, 7, 8, true, false},
		{"outside the map", container.Config{IDMap: m, Init: container.Init{UID: 70000}}, 0, 0, false, true},
	} {
		uid, gid, mapped, err := scriptOwner(tc.cfg)
		if tc.bad {
			assert.Error(t, err, tc.name)
			continue
		}
		require.NoError(t, err, tc.name)
		assert.Equal(t, []any{tc.uid, tc.gid, tc.mapped}, []any{uid, gid, mapped}, tc.name)
	}
}
