package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/storage"
)

// devbox is a built stint run as `sudo stint` would be for a test user,
// from their project directory.
type devbox struct {
	t       *testing.T
	bin     string
	root    string
	project string
	user    testenv.HostUser
	// extraEnv is added to stint's environment (SSH_AUTH_SOCK).
	extraEnv []string
	// dir, when set, is where stint runs instead of the project.
	dir string
}

// newDevbox builds stint, makes a test user (uid not 0, not 1000) and
// their project (a directory of theirs with a file of theirs and spec),
// and removes the set, its volumes and the goldens when the test ends.
func newDevbox(t *testing.T, spec string) *devbox {
	t.Helper()
	bin, dir := builtStint(t)
	testenv.RequiresTool(t, "script")
	d := &devbox{t: t, bin: bin, root: filepath.Join(dir, "root"), project: filepath.Join(dir, "project"), user: testenv.MakeHostUser(t)}
	require.NoError(t, os.Mkdir(d.project, 0o755))
	spec = strings.ReplaceAll(spec, "PROJECT", d.project)
	for name, data := range map[string]string{"stint.toml": spec, "mine": "host\n"} {
		p := filepath.Join(d.project, name)
		require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
		require.NoError(t, os.Chown(p, d.user.UID, d.user.GID))
	}
	require.NoError(t, os.Chown(d.project, d.user.UID, d.user.GID))
	t.Cleanup(d.cleanup)
	return d
}

// env is the environment sudo would give stint: ours (PATH), without an
// agent, with SUDO_UID, SUDO_GID and SUDO_USER naming the test user.
func (d *devbox) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SUDO_") && !strings.HasPrefix(kv, "SSH_AUTH_SOCK=") {
			env = append(env, kv)
		}
	}
	return append(append(env, d.user.Env()...), d.extraEnv...)
}

// stint runs stint in the project: stdout, stderr, exit code.
func (d *devbox) stint(args ...string) (string, string, int) {
	d.t.Helper()
	cmd := exec.Command(d.bin, append([]string{"--root", d.root}, args...)...)
	cmd.Dir, cmd.Env = cmp.Or(d.dir, d.project), d.env()
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errb.String(), ee.ExitCode()
	}
	require.NoError(d.t, err)
	return out.String(), errb.String(), 0
}

// onTerminal runs stint under script(1), on a terminal: its output.
func (d *devbox) onTerminal(args ...string) string {
	d.t.Helper()
	line := d.bin + " --root " + d.root + " " + strings.Join(args, " ")
	cmd := exec.Command("script", "-qec", line, "/dev/null")
	cmd.Dir, cmd.Env = d.project, d.env()
	out, err := cmd.CombinedOutput()
	require.NoError(d.t, err, "%s", out)
	return string(out)
}

func (d *devbox) cleanup() {
	if _, errs, code := d.stint("down", "--volumes", "."); code != 0 {
		d.t.Errorf("cleanup: stint down --volumes: exit %d: %s", code, errs)
	}
	_, _, _ = d.stint("gc", "--kept")
	ctx := context.Background()
	drv, err := storage.Open(ctx, storage.Config{Driver: "auto", Root: d.root})
	if err != nil {
		d.t.Errorf("cleanup: %v", err)
		return
	}
	defer drv.Close()
	var ids []string
	_ = drv.Walk(ctx, func(v storage.Volume) error { ids = append(ids, v.ID); return nil })
	for i := len(ids) - 1; i >= 0; i-- {
		if err := drv.Destroy(ctx, ids[i]); err != nil {
			d.t.Errorf("cleanup: %v", err)
		}
	}
}

const devboxSpec = `version = 1
name = "devboxtest"

[image.bb]
builder = "busybox"

[container.dev]
image = "bb"
host_user = true
home = "persist"
workdir = "PROJECT"
env = { DEVBOX = "yes" }
command = ["/bin/sh", "-c", "exec sleep 1000000"]
mount = [{ source = ".", target = "PROJECT" }]

[image.recipe]
from = "bb"
properties = { description = "a recipe on busybox" }

[container.fromrecipe]
image = "recipe"
state = "stopped"

[container.same]
image = "bb"
host_user = true
command = ["/bin/sh", "-c", "exec sleep 1000000"]
mount = [{ source = "." }]

[container.dies]
image = "bb"
state = "stopped" # dies
command = ["/bin/sh", "-c", "echo the end is near; exit 4"]

[container.later]
image = "bb"
state = "stopped" # later
command = ["/bin/sh", "-c", "sleep 1; exit 3"]

[job.hostname]
image = "recipe"
run = ["cat /etc/hosts"]

[job.broken]
image = "bb"
host_user = true
env = { JOBVAR = "the job's" }
keep_on_failure = true
run = ["exit 7"]
`

// TestDevBoxCLI is issue 17's "done when", through the binary, as sudo runs
// it for a test user: the box made on first `stint shell`, as that user,
// their files theirs on both sides, a home that survives down, a terminal
// that is one inside.
func TestDevBoxCLI(t *testing.T) {
	d := newDevbox(t, devboxSpec)
	uid := strconv.Itoa(d.user.UID)

	out, errs, code := d.stint("shell", "dev", "--", "id", "-u")
	require.Equal(t, 0, code, "%s%s", out, errs)
	assert.Equal(t, uid+"\n", out, "CMD's output alone on stdout")
	assert.Contains(t, errs, "creating dev")

	out, errs, code = d.stint("shell", "dev", "--", "sh", "-c", "pwd; echo $DEVBOX; touch inside && echo inside >> mine && echo kept > $HOME/dotfile")
	require.Equal(t, 0, code, "%s%s", out, errs)
	assert.Equal(t, d.project+"\nyes\n", out, "in workdir, with the container's env")
	for _, f := range []string{"inside", "mine"} {
		var st syscall.Stat_t
		require.NoError(t, syscall.Stat(filepath.Join(d.project, f), &st))
		assert.Equal(t, [2]uint32{uint32(d.user.UID), uint32(d.user.GID)}, [2]uint32{st.Uid, st.Gid}, "owner of %s on the host", f)
	}
	b, err := os.ReadFile(filepath.Join(d.project, "mine"))
	require.NoError(t, err)
	assert.Equal(t, "host\ninside\n", string(b), "a host file of theirs is writable inside")

	_, errs, code = d.stint("down", ".")
	require.Equal(t, 0, code, errs)
	out, errs, code = d.stint("shell", "dev", "--", "sh", "-c", "cat $HOME/dotfile")
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "kept\n", out, "the home survives down")

	out, _, code = d.stint("shell", "dev", "--", "cat", "/etc/hostname")
	require.Equal(t, 0, code)
	assert.Equal(t, "dev\n", out, "a long-lived container renders its image's create templates")

	assert.Regexp(t, `/dev/pts/\d+`, d.onTerminal("shell", "dev", "--", "tty"), "tty in stint shell")
	assert.Regexp(t, `/dev/pts/\d+`, d.onTerminal("exec", "busybox", "--", "tty"), "tty in stint exec")
	assert.Contains(t, d.onTerminal("shell", "dev", "--", "sh", "-c", "'stat -c %U $(tty)'"), d.user.Name, "their terminal")

	out, errs, code = d.stint("shell", "--user", "root", "--workdir", "/tmp", "dev", "--", "sh", "-c", "id -u; pwd")
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "0\n/tmp\n", out, "--user and --workdir")
	d.dir = "/"
	out, errs, code = d.stint("shell", "devboxtest.dev", "--", "id", "-un")
	require.Equal(t, 0, code, errs)
	assert.Equal(t, d.user.Name+"\n", out, "a running container by its name, from anywhere")
	_, errs, code = d.stint("shell", "nosuch")
	assert.Equal(t, ExitUsage, code, errs)
	sub := filepath.Join(d.project, "sub")
	require.NoError(t, os.Mkdir(sub, 0o755))
	d.dir = sub
	out, errs, code = d.stint("shell", "-f", d.project, "same", "--", "pwd")
	require.Equal(t, 0, code, errs)
	assert.Equal(t, sub+"\n", out, "the project at its own path, entered where the caller is")
	d.dir = ""

	_, errs, code = d.stint("down", "--volumes", ".")
	require.Equal(t, 0, code, errs)
	_, err = os.Stat(filepath.Join(d.root, "volumes", "devboxtest"))
	assert.True(t, os.IsNotExist(err), "down --volumes leaves the home volume: %v", err)
}

// TestDevBoxKeptJobAndDeath: `stint shell` into a kept failed job has the
// job's environment (and the run's summary says how to get there); apply
// of a container whose PID 1 exits at once fails with exit 1 and its last
// console lines.
func TestDevBoxKeptJobAndDeath(t *testing.T) {
	d := newDevbox(t, devboxSpec)
	out, errs, code := d.stint("run", ".", "broken")
	require.Equal(t, ExitJobFail, code, "%s%s", out, errs)
	assert.Contains(t, out, "stint --root "+d.root+" shell stint-broken-")
	out, errs, code = d.stint("shell", "broken", "--", "sh", "-c", "echo $JOBVAR; id -u")
	require.Equal(t, 0, code, "%s%s", out, errs)
	assert.Equal(t, fmt.Sprintf("the job's\n%d\n", 0), out, "the job's env, as its user (root)")
	out, errs, code = d.stint("shell", "broken", "--", "id", "-u", d.user.Name)
	require.Equal(t, 0, code, "%s%s", out, errs)
	assert.Equal(t, fmt.Sprintf("%d\n", d.user.UID), out, "a host_user job has the host user")

	spec := strings.Replace(devboxSpec, `state = "stopped" # dies`, `state = "running"`, 1)
	spec = strings.Replace(spec, `state = "stopped" # later`, `state = "running"`, 1)
	require.NoError(t, os.WriteFile(filepath.Join(d.project, "stint.toml"), []byte(strings.ReplaceAll(spec, "PROJECT", d.project)), 0o644))
	out, errs, code = d.stint("apply", ".")
	assert.Equal(t, ExitJobFail, code, "%s%s", out, errs)
	assert.Contains(t, out+errs, "PID 1 exited right after the start")
	assert.Contains(t, out+errs, "the end is near")
	out, _, code = d.stint("shell", "fromrecipe", "--", "sh", "-c", "cat /etc/hostname /etc/hosts")
	require.Equal(t, ExitUsage, code, "fromrecipe is stopped: %s", out)
	out, errs, code = d.stint("run", ".", "hostname")
	require.Equal(t, 0, code, "%s%s", out, errs)
	assert.NotContains(t, out, "stint-image-", "a recipe image keeps no build container's name")
	out, _, code = d.stint("ps")
	require.Equal(t, 0, code)
	assert.Regexp(t, `devboxtest\.dies +container +devboxtest +- +stopped +stopped`, out, "ps never says running for a stopped container")
	time.Sleep(1500 * time.Millisecond) // later's PID 1 ends after the settle
	out, _, code = d.stint("ps")
	require.Equal(t, 0, code)
	assert.Regexp(t, `devboxtest\.later +container +devboxtest +- +stopped +stopped`, out, "nor for one that stopped later")
}
