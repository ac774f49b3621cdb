package main

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/lxdenv"
	"github.com/stintdev/stint/runner/lxdrt"
)

// TestRemoteGCOldNames: `stint --remote l gc` finds stint's instances by
// their owner tag whatever they are called: one an older stint named
// "stint-…" (now "stintr-…"), tagged as stint tags a job's instance whose
// process is gone, is removed, running or not; an instance of the same
// kind of name without stint's tags is never touched.
func TestRemoteGCOldNames(t *testing.T) {
	f := newCLI(t)
	d := lxdenv.StartDaemon(t)
	out, code := f.run(t, "remote", "add", "l", "unix://"+d.Socket)
	require.Equal(t, 0, code, out)
	// A job puts the busybox image on the remote, leaving no instance.
	p := f.spec(t, "[job.hi]\nimage = \"busybox\"\nrun = [\"true\"]\n")
	out, code = f.run(t, "--remote", "l", "run", p)
	require.Equal(t, 0, code, out)
	require.Empty(t, lxcList(t, d))
	fp := strings.TrimSpace(d.MustLxc(t, "image", "list", "-c", "F", "-f", "csv"))
	require.NotEmpty(t, fp)

	gone := exec.Command("true")
	require.NoError(t, gone.Run())
	host, err := os.Hostname()
	require.NoError(t, err)
	tags := func(name string) []string {
		var args []string
		for k, v := range map[string]string{
			"owner": lxdrt.OwnerID(f.root), "name": name, "host": host,
			"pid": strconv.Itoa(gone.Process.Pid), "job": "old", "journal": name,
		} {
			args = append(args, "-c", "user.stint."+k+"="+v)
		}
		return args
	}
	d.MustLxc(t, append([]string{"init", fp, "stint-old-stopped"}, tags("stint-old-stopped")...)...)
	d.MustLxc(t, append([]string{"launch", fp, "stint-old-running", "--ephemeral"}, tags("stint-old-running")...)...)
	d.MustLxc(t, "init", fp, "stint-untagged")
	d.MustLxc(t, "init", fp, "stint-untagged-running")
	d.MustLxc(t, "start", "stint-untagged-running")
	t.Cleanup(func() {
		for _, n := range []string{"stint-old-stopped", "stint-old-running", "stint-untagged", "stint-untagged-running"} {
			_, _ = d.Lxc(context.Background(), "delete", "--force", n)
		}
	})

	require.Equal(t, "RUNNING", strings.TrimSpace(d.MustLxc(t, "list", "stint-old-running", "-c", "s", "-f", "csv")))

	out, code = f.run(t, "--remote", "l", "gc")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "stint-old-stopped")
	assert.Contains(t, out, "stint-old-running")
	assert.Equal(t, []string{"stint-untagged", "stint-untagged-running"}, lxcList(t, d))
	assert.Equal(t, "RUNNING", strings.TrimSpace(d.MustLxc(t, "list", "stint-untagged-running", "-c", "s", "-f", "csv")))
	out, code = f.run(t, "--remote", "l", "gc")
	assert.Equal(t, 0, code, out)
	assert.Equal(t, []string{"stint-untagged", "stint-untagged-running"}, lxcList(t, d), "never touched")
}
