package lxcrt_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/runner/container"
)

// TestReadonlyBindLocked: a readonly bind (a directory and a file) cannot be
// remounted read-write by container root: the kernel refuses (EPERM, busybox
// says "permission denied"). Stopped and restarted after its staged mounts
// were lost (as in a reboot), the container sees the sources again, still
// locked; Destroy leaves nothing mounted.
func TestReadonlyBindLocked(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	src := t.TempDir()
	require.NoError(t, os.Chmod(src, 0o755))
	// Owned by container root: only the mount's flag stops a write.
	require.NoError(t, os.Chown(src, int(f.idmap.HostUID), int(f.idmap.HostGID)))
	require.NoError(t, os.WriteFile(filepath.Join(src, "in"), []byte("data\n"), 0o644))
	file := filepath.Join(t.TempDir(), "one")
	require.NoError(t, os.WriteFile(file, []byte("file\n"), 0o644))
	require.NoError(t, os.Chown(file, int(f.idmap.HostUID), int(f.idmap.HostGID)))
	f.start(t, "ro", container.Config{Mounts: []container.Mount{
		{Type: "bind", Source: src, Target: "/data", Readonly: true},
		{Type: "bind", Source: file, Target: "/etc/one", Readonly: true},
	}})
	probe := `cat /data/in /etc/one
for m in /data /etc/one; do
  /.stint/busybox mount -o remount,bind,rw $m 2>&1 && echo REMOUNTED $m
  echo x >> $m 2>/dev/null; echo x > $m/x 2>/dev/null && echo WROTE $m
done; true`
	check := func() {
		t.Helper()
		out, st := f.sh(t, "ro", probe)
		require.True(t, st.Success(), out)
		assert.Contains(t, out, "data\nfile\n")
		assert.Contains(t, out, "permission denied")
		assert.NotContains(t, out, "REMOUNTED")
		assert.NotContains(t, out, "WROTE")
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		assert.Equal(t, "file\n", string(b))
		assert.NoFileExists(t, filepath.Join(src, "x"))
	}
	check()

	// A reboot: stopped, the staged mounts gone.
	require.NoError(t, f.rt.Stop(ctx, "ro"))
	for _, p := range stagedMounts(t, f.rt.LXCPath()) {
		require.NoError(t, unix.Unmount(p, unix.MNT_DETACH))
	}
	require.Empty(t, stagedMounts(t, f.rt.LXCPath()))
	require.NoError(t, f.rt.Start(ctx, "ro"))
	check()

	require.NoError(t, f.rt.Destroy(ctx, "ro"))
	assert.Empty(t, stagedMounts(t, f.rt.LXCPath()))
	ents, err := os.ReadDir(f.rt.LXCPath())
	require.NoError(t, err)
	assert.Empty(t, ents, "left in the LXC path after Destroy")
}

// stagedMounts lists the host's mount points below lxcpath.
func stagedMounts(t *testing.T, lxcpath string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if fs := strings.Fields(line); len(fs) > 4 && strings.HasPrefix(fs[4], lxcpath+"/") {
			out = append(out, fs[4])
		}
	}
	return out
}
