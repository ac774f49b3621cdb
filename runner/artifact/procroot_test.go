package artifact

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/spec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The runner passes /proc/<init pid>/root, a magic link to a process's root,
// to see the container's mounts. Here a process chrooted into the fixture
// stands in for the container: the traps behave as with a plain directory.
func TestProcPidRoot(t *testing.T) {
	testenv.RequiresRoot(t)
	testenv.RequiresTool(t, "busybox")
	root, host := fixture(t)
	bb, err := exec.LookPath("busybox")
	require.NoError(t, err)
	copyFile(t, bb, filepath.Join(root, "bin", "busybox"))
	cmd := exec.Command("/bin/busybox", "sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})

	dest := t.TempDir()
	res, err := Collect(context.Background(), fmt.Sprintf("/proc/%d/root", cmd.Process.Pid),
		[]spec.Artifact{{Path: "/escape/passwd"}, {Path: "/src/dist/*.tar.gz", Dest: "d"}, {Path: "/hostdir/secret"}}, dest, false)
	require.NoError(t, err)
	got := tree(t, dest)
	assert.Equal(t, "f 0644 container-passwd", got["passwd"])
	assert.Equal(t, "l /etc/passwd", got["d/abs.tar.gz"])
	assert.Equal(t, "l "+filepath.Join(host, "secret"), got["d/host.tar.gz"])
	assert.Equal(t, "f 0644 A", got["d/a.tar.gz"])
	assert.Contains(t, skipReasons(res)["/hostdir/secret"], "matched nothing")
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}
