package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/storage"
)

// These tests drive the real stint binary (stintBinary, the one harness in
// binary_test.go) as a user would: signals and kill -9 hit a separate
// process.

// cliFixture is a --root and a spec directory for the stint binary.
type cliFixture struct {
	bin, root, dir string
}

func newCLI(t *testing.T) *cliFixture {
	t.Helper()
	testenv.RequiresLXC(t)
	testenv.RequiresTool(t, "busybox")
	f := &cliFixture{bin: stintBinary(t), root: t.TempDir(), dir: t.TempDir()}
	testenv.Reachable(t, f.root)
	testenv.Reachable(t, f.dir)
	t.Cleanup(func() {
		// Leave nothing even when the test failed: gc everything, then
		// the golden volumes.
		_ = exec.Command(f.bin, "--root", f.root, "gc", "--all").Run()
		ctx := context.Background()
		if drv, err := storage.Open(ctx, storage.Config{Driver: "overlay", Root: f.root}); err == nil {
			var ids []string
			_ = drv.Walk(ctx, func(v storage.Volume) error { ids = append(ids, v.ID); return nil })
			for i := len(ids) - 1; i >= 0; i-- {
				_ = drv.Destroy(ctx, ids[i])
			}
			_ = drv.Close()
		}
	})
	return f
}

const specHead = `version = 1
[storage]
driver = "overlay"
[image.busybox]
builder = "busybox"
`

func (f *cliFixture) spec(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(f.dir, "stint.toml")
	require.NoError(t, os.WriteFile(p, []byte(specHead+body), 0o644))
	return p
}

func (f *cliFixture) cmd(args ...string) *exec.Cmd {
	c := exec.Command(f.bin, append([]string{"--root", f.root}, args...)...)
	c.Dir = f.dir
	return c
}

// run runs stint to the end and returns its output and exit code.
func (f *cliFixture) run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := f.cmd(args...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	require.NoError(t, err, string(out))
	return string(out), 0
}

// startUntil starts stint and returns once a line of its output contains
// marker.
func (f *cliFixture) startUntil(t *testing.T, marker string, args ...string) *exec.Cmd {
	t.Helper()
	c := f.cmd(args...)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	c.Stdout, c.Stderr = pw, pw
	require.NoError(t, c.Start())
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), marker) {
				once.Do(func() { close(seen) })
			}
		}
	}()
	t.Cleanup(func() { _ = c.Process.Kill(); pw.Close() })
	select {
	case <-seen:
	case <-time.After(60 * time.Second):
		t.Fatalf("stint never printed %q", marker)
	}
	return c
}

// assertClean checks that no container, record, clone or clone mount is left.
func (f *cliFixture) assertClean(t *testing.T) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(f.root, "containers"))
	require.NoError(t, err)
	assert.Empty(t, ents, "containers left in the LXC path")
	st, err := state.Open(filepath.Join(f.root, "state"))
	require.NoError(t, err)
	recs, err := st.List()
	require.NoError(t, err)
	assert.Empty(t, recs, "state records left")
	ctx := context.Background()
	drv, err := storage.Open(ctx, storage.Config{Driver: "overlay", Root: f.root})
	require.NoError(t, err)
	defer drv.Close()
	require.NoError(t, drv.Walk(ctx, func(v storage.Volume) error {
		assert.Equal(t, storage.KindGolden, v.Kind, "clone %s left", v.ID)
		return nil
	}))
	assert.Empty(t, clonesMounted(t, f.root), "clone mounts left")
}

func TestCLIPassFailExitCodes(t *testing.T) {
	f := newCLI(t)
	p := f.spec(t, `
[job.ok]
image = "busybox"
run = ["echo fine"]

[job.bad]
image = "busybox"
run = ["echo one", "exit 4", "echo never"]

[[job.bad.artifact]]
path = "/etc/hostname-missing"
when = "on_success"
`)
	out, code := f.run(t, "run", p, "ok")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "[ok] fine")
	out, code = f.run(t, "run", p)
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "exit 4")
	assert.NotContains(t, out, "never")
	out, code = f.run(t, "run", p, "nosuch")
	assert.Equal(t, 2, code, out)
	require.NoError(t, os.WriteFile(p, []byte("version = 1\n[job.x]\nimgae = 1\n"), 0o644))
	out, code = f.run(t, "run", p)
	assert.Equal(t, 2, code, out)
	f.assertClean(t)
}

func TestCLISignals(t *testing.T) {
	cases := []struct {
		name  string
		sig   syscall.Signal
		group bool // to stint's whole process group, as Ctrl-C on a terminal
	}{
		{"SIGINT", syscall.SIGINT, false},
		{"SIGTERM", syscall.SIGTERM, false},
		{"ctrl-c", syscall.SIGINT, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newCLI(t)
			p := f.spec(t, `
[job.long]
image = "busybox"
run = ["echo started", "sleep 600", "echo never"]
`)
			c := f.startUntil(t, "[long] started", "run", p)
			time.Sleep(300 * time.Millisecond) // into the sleep
			target := c.Process.Pid
			if tc.group {
				target = -c.Process.Pid // startUntil makes stint a group leader
			}
			require.NoError(t, syscall.Kill(target, tc.sig))
			done := make(chan error, 1)
			go func() { done <- c.Wait() }()
			select {
			case err := <-done:
				var ee *exec.ExitError
				require.ErrorAs(t, err, &ee)
				assert.Equal(t, 1, ee.ExitCode())
			case <-time.After(60 * time.Second):
				t.Fatalf("stint did not exit after %s", tc.sig)
			}
			f.assertClean(t)
		})
	}
}

func TestCLIKeepOnFailurePsGC(t *testing.T) {
	f := newCLI(t)
	p := f.spec(t, `
[job.broken]
image = "busybox"
run = ["exit 1"]
`)
	out, code := f.run(t, "run", p, "--keep-on-failure")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "kept: container stint-broken-")
	out, code = f.run(t, "ps")
	assert.Equal(t, 0, code, out)
	assert.Regexp(t, `stint-broken-\S+\s+job\s+\S+\s+broken\s+stopped\s+kept`, out)
	out, code = f.run(t, "gc")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "nothing to remove", "plain gc removed a kept container")
	out, code = f.run(t, "gc", "--kept")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "removed stint-broken-")
	f.assertClean(t)
}

// TestCLITwoProcessesOneRoot runs two stint processes on one --root at once.
func TestCLITwoProcessesOneRoot(t *testing.T) {
	f := newCLI(t)
	p := f.spec(t, `
[job.a]
image = "busybox"
run = ["echo a", "sleep 1"]
[job.b]
image = "busybox"
run = ["echo b", "sleep 1"]
`)
	var wg sync.WaitGroup
	outs := make([]string, 2)
	codes := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := f.cmd("run", p, "-j", "2").CombinedOutput()
			outs[i] = string(out)
			if err != nil {
				codes[i] = -1
			}
		}()
	}
	wg.Wait()
	for i := range 2 {
		assert.Equal(t, 0, codes[i], outs[i])
		assert.Equal(t, 2, strings.Count(outs[i], "PASSED"), outs[i])
	}
	f.assertClean(t)
}

func TestCLIKill9ThenGC(t *testing.T) {
	f := newCLI(t)
	p := f.spec(t, `
[job.long]
image = "busybox"
run = ["echo started", "sleep 600"]
`)
	c := f.startUntil(t, "[long] started", "run", p)
	require.NoError(t, c.Process.Signal(syscall.SIGKILL))
	_ = c.Wait()
	ents, err := os.ReadDir(filepath.Join(f.root, "containers"))
	require.NoError(t, err)
	require.Len(t, ents, 1, "the killed run should have left its container")
	out, code := f.run(t, "ps")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, ents[0].Name())
	out, code = f.run(t, "gc")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "removed "+ents[0].Name())
	f.assertClean(t)

	// Again, and this time the next `stint run` cleans up first.
	c = f.startUntil(t, "[long] started", "run", p)
	require.NoError(t, c.Process.Signal(syscall.SIGKILL))
	_ = c.Wait()
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "quick.toml"), []byte(specHead+"[job.quick]\nimage = \"busybox\"\nrun = [\"true\"]\n"), 0o644))
	out, code = f.run(t, "run", filepath.Join(f.dir, "quick.toml"))
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "removed 1 container left by dead stint processes")
	f.assertClean(t)
}

func TestCLIArtifactsSymlinksAndWhen(t *testing.T) {
	f := newCLI(t)
	p := f.spec(t, `
[job.links]
image = "busybox"
run = [
  "mkdir -p /out/sub && echo real > /out/file && echo nested > /out/sub/n",
  "ln -s /etc/shadow /out/abs && ln -s ../../../../../../etc/shadow /out/rel && ln -s /etc /out/dirlink",
  "exit 1",
]

[[job.links.artifact]]
path = "/out/*"
when = "always"

[[job.links.artifact]]
path = "/out/file"
dest = "failure/"
when = "on_failure"

[[job.links.artifact]]
path = "/out/file"
dest = "success/"
`)
	out, code := f.run(t, "run", p, "--artifacts", filepath.Join(f.dir, "art"))
	assert.Equal(t, 1, code, out)
	art := filepath.Join(f.dir, "art", "links")
	b, err := os.ReadFile(filepath.Join(art, "file"))
	require.NoError(t, err, out)
	assert.Equal(t, "real\n", string(b))
	b, err = os.ReadFile(filepath.Join(art, "sub", "n"))
	require.NoError(t, err, "directories are copied recursively")
	assert.Equal(t, "nested\n", string(b))
	assert.FileExists(t, filepath.Join(art, "failure", "file"), "on_failure artifact not collected")
	assert.NoFileExists(t, filepath.Join(art, "success", "file"), "on_success artifact collected after a failure")
	// Nothing of the host came out through the links: each is a link or absent.
	hostShadow, _ := os.ReadFile("/etc/shadow")
	require.NoError(t, filepath.Walk(art, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			c, _ := os.ReadFile(path)
			assert.NotEqual(t, string(hostShadow), string(c), "%s holds the host's /etc/shadow", path)
		}
		return nil
	}))
	for _, l := range []string{"abs", "rel", "dirlink"} {
		fi, err := os.Lstat(filepath.Join(art, l))
		if err == nil {
			assert.Equal(t, os.ModeSymlink, fi.Mode().Type(), "%s was followed instead of copied as a link", l)
		}
	}
	f.assertClean(t)
}

func TestCLIMatrixParallel(t *testing.T) {
	f := newCLI(t)
	p := f.spec(t, `
[job.m]
image = "busybox"
run = ["echo variant ${i}", "sleep 1"]
[job.m.matrix]
i = ["1", "2", "3", "4"]
`)
	begin := time.Now()
	out, code := f.run(t, "run", p, "-j", "4")
	assert.Equal(t, 0, code, out)
	for _, i := range []string{"1", "2", "3", "4"} {
		assert.Contains(t, out, "variant "+i)
	}
	assert.Equal(t, 4, strings.Count(out, "PASSED"), out)
	t.Logf("4 jobs with -j 4 took %s", time.Since(begin))
	f.assertClean(t)
}

func TestCLIExec(t *testing.T) {
	f := newCLI(t)
	src := t.TempDir()
	require.NoError(t, os.Chmod(src, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "in"), []byte("host data\n"), 0o644))
	t.Setenv("STINT_CANARY", "leaked")

	c := f.cmd("exec", "--mount", src+":/src:ro", "-e", "A=B", "busybox", "--",
		"sh", "-c", "cat; cat /src/in; env; touch /src/new 2>/dev/null && echo WRITABLE; exit 5")
	c.Stdin = strings.NewReader("from stdin\n")
	out, err := c.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, string(out))
	assert.Equal(t, 5, ee.ExitCode(), "stint exec must exit with the command's code")
	assert.Contains(t, string(out), "from stdin\nhost data\n")
	assert.Contains(t, string(out), "A=B\n")
	assert.NotContains(t, string(out), "STINT_CANARY")
	assert.NotContains(t, string(out), "WRITABLE")
	assert.NoFileExists(t, filepath.Join(src, "new"))

	out2, code := f.run(t, "exec", "busybox", "--", "sh", "-c", "kill -9 $$")
	assert.Equal(t, 128+9, code, out2)

	begin := time.Now()
	out2, code = f.run(t, "exec", "--timeout", "1s", "busybox", "--", "sleep", "600")
	assert.Equal(t, 1, code, out2)
	assert.Contains(t, out2, "timed out")
	assert.Less(t, time.Since(begin), 60*time.Second)
	f.assertClean(t)
}

func TestCLIJSONEvents(t *testing.T) {
	f := newCLI(t)
	p := f.spec(t, `
[job.j]
image = "busybox"
run = ["echo one", "exit 2"]
`)
	c := f.cmd("--json", "run", p)
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, stderr.String())
	assert.Equal(t, 1, ee.ExitCode())
	var types []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var ev struct {
			Type   string `json:"type"`
			Phase  string `json:"phase"`
			Status *int   `json:"status"`
			Result string `json:"result"`
			Micros int64  `json:"micros"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &ev), "not one JSON event per line: %q", line)
		if ev.Type == "phase" {
			types = append(types, "phase:"+ev.Phase)
			assert.Positive(t, ev.Micros, "phase %s has its duration", ev.Phase)
			continue
		}
		types = append(types, ev.Type)
		if ev.Type == "job_finished" {
			require.NotNil(t, ev.Status)
			assert.Equal(t, 2, *ev.Status)
			assert.Equal(t, "failed", ev.Result)
		}
	}
	assert.Equal(t, []string{"job_started", "phase_started", "phase:image_build", "phase_started", "phase:golden", "phase:clone", "phase:configure", "phase:start",
		"step_started", "step_finished", "step_started", "step_finished", "phase:exec", "phase:stop",
		"phase:destroy", "teardown_done", "job_finished"}, types)
	assert.Contains(t, stderr.String(), "[j] one", "job output goes to stderr with --json")
	f.assertClean(t)
}

// TestCLIExecTTY runs stint exec on a terminal (script(1) makes one): the
// command gets it, and stint still exits with the command's code.
func TestCLIExecTTY(t *testing.T) {
	f := newCLI(t)
	testenv.RequiresTool(t, "script")
	inner := f.bin + " --root " + f.root + " exec busybox -- sh -c 'test -t 0 && test -t 1 && echo stdin-is-a-tty; exit 3'"
	c := exec.Command("script", "-qec", inner, "/dev/null")
	out, err := c.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, string(out))
	assert.Equal(t, 3, ee.ExitCode(), string(out))
	assert.Contains(t, string(out), "stdin-is-a-tty")
	f.assertClean(t)
}

// TestCLIRecipeImage builds an image from a recipe on busybox (files and a
// hook), runs a job on it, and reuses the built image on the next run.
func TestCLIRecipeImage(t *testing.T) {
	f := newCLI(t)
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "motd"), []byte("welcome\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "hook.sh"), []byte("echo hook ran\necho from-hook > /etc/hooked\n"), 0o644))
	p := f.spec(t, `
[image.custom]
from = "busybox"
hooks = ["hook.sh"]
files = { "/etc/motd" = "motd" }

[job.use]
image = "custom"
run = ["cat /etc/motd /etc/hooked", "test ! -e /.stint-hooks"]
`)
	out, code := f.run(t, "-v", "run", p) // -v streams the build's output
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "[image custom] hook ran")
	assert.Contains(t, out, "[use] welcome\n")
	assert.Contains(t, out, "[use] from-hook\n")
	out, code = f.run(t, "-v", "run", p)
	require.Equal(t, 0, code, out)
	assert.NotContains(t, out, "hook ran", "the recipe was rebuilt instead of reused")
	assert.Contains(t, out, "[use] welcome\n")
	f.assertClean(t)
}

// TestCLIExecTTYCtrlC: on a terminal, Ctrl-C is the command's: it ends the
// command (exit 130, as in a shell), stint exec reports that and tears down,
// rather than aborting as a host failure.
func TestCLIExecTTYCtrlC(t *testing.T) {
	f := newCLI(t)
	testenv.RequiresTool(t, "script")
	inner := f.bin + " --root " + f.root + " exec busybox -- sh -c 'echo rea\"\"dy; sleep 600'"
	c := exec.Command("script", "-qec", inner, "/dev/null")
	stdin, err := c.StdinPipe()
	require.NoError(t, err)
	var out testenv.SyncBuffer
	c.Stdout, c.Stderr = &out, &out
	require.NoError(t, c.Start())
	t.Cleanup(func() { _ = c.Process.Kill() })
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "ready") {
		if time.Now().After(deadline) {
			t.Fatalf("never saw ready in:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	_, _ = io.WriteString(stdin, "\x03") // Ctrl-C: the terminal signals the foreground group
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, out.String())
		assert.Equal(t, 128+int(syscall.SIGINT), ee.ExitCode(), out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("stint exec hung:\n%s", out.String())
	}
	f.assertClean(t)
}

// clonesMounted lists mounts under root that are not golden volumes.
func clonesMounted(t *testing.T, root string) []string {
	fh, err := os.Open("/proc/self/mountinfo")
	require.NoError(t, err)
	defer fh.Close()
	var out []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 4 && strings.HasPrefix(fs[4], root+"/") && !strings.Contains(fs[4], "golden-") && !strings.Contains(fs[4], "/volumes/cache.") {
			out = append(out, fs[4])
		}
	}
	return out
}
