package runner

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stintdev/stint/runner/state"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestImageDefaultsApply: the image's env goes under the spec's (a spec
// key wins), its working directory and user fill what the spec left
// unset; a long-lived container and a host_user job are left alone.
func TestImageDefaultsApply(t *testing.T) {
	d := ImageDefaults{Env: []string{"PATH=/bin", "A=image", "B=image", "junk"}, Workdir: "/srv", User: "app:staff"}
	got := d.apply(Request{Kind: state.KindJob, Env: map[string]string{"B": "spec"}})
	assert.Equal(t, map[string]string{"PATH": "/bin", "A": "image", "B": "spec"}, got.Env)
	assert.Equal(t, "/srv", got.Workdir)
	assert.Equal(t, "app", got.User)
	assert.Equal(t, "staff", got.Group)

	got = d.apply(Request{Kind: state.KindJob, Workdir: "/w", User: "root"})
	assert.Equal(t, "/w", got.Workdir)
	assert.Equal(t, "root", got.User)
	assert.Empty(t, got.Group)

	assert.Empty(t, d.apply(Request{Kind: state.KindJob, HostUser: true}).User)
	c := d.apply(Request{Kind: state.KindContainer})
	assert.Empty(t, c.Env)
	assert.Empty(t, c.Workdir)

	env := map[string]string{"B": "spec"}
	d.apply(Request{Kind: state.KindJob, Env: env})
	assert.Equal(t, map[string]string{"B": "spec"}, env, "the spec's map is not written to")
}

// TestWithGroup: a gid or a name in the image's /etc/group becomes the
// primary group; an unknown name is an error naming it.
func TestWithGroup(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nstaff:x:50:app\n"), 0o644))
	u := User{Name: "app", UID: 1000, GID: 1000}
	got, err := withGroup(root, u, "")
	require.NoError(t, err)
	assert.Equal(t, 1000, got.GID)
	got, err = withGroup(root, u, "42")
	require.NoError(t, err)
	assert.Equal(t, 42, got.GID)
	got, err = withGroup(root, u, "staff")
	require.NoError(t, err)
	assert.Equal(t, 50, got.GID)
	_, err = withGroup(root, u, "nosuch")
	require.ErrorContains(t, err, "group nosuch: not in the container's /etc/group")
}
