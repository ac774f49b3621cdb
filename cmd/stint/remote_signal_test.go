package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/lxdenv"
)

// TestRemoteSIGINT: Ctrl-C (SIGINT to stint's process group) during
// `stint --remote l run` leaves nothing behind, whether it comes mid-line
// or early (while the image is made or uploaded, or the instance made): no instance on the remote,
// no volume but the job's cache (kept on purpose) and no image but the
// job's (uploaded once, reused); locally no state record and none of the
// temporary files stint makes for a remote job (bind tarballs, passwd
// copies).
func TestRemoteSIGINT(t *testing.T) {
	f := newCLI(t)
	d := lxdenv.StartDaemon(t)
	out, code := f.run(t, "remote", "add", "l", "unix://"+d.Socket)
	require.Equal(t, 0, code, out)
	require.NoError(t, os.Mkdir(filepath.Join(f.dir, "src"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "src", "x"), []byte("x\n"), 0o644))
	p := f.spec(t, `
[job.long]
image = "busybox"
workdir = "/work"
run = ["echo started", "sleep 600", "echo never"]

[[job.long.mount]]
source = "src"
target = "/src"
readonly = true

[[job.long.mount]]
type = "cache"
name = "sig"
target = "/cache"
`)
	for _, tc := range []struct {
		name   string
		marker string        // SIGINT once this line was printed ...
		after  time.Duration // ... or this long after the start
	}{
		{"Upload", "", 250 * time.Millisecond}, // the first run: making or uploading the image
		{"MidLine", "[long] started", 0},
		{"Create", "", 700 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			c := exec.Command(f.bin, "--root", f.root, "--remote", "l", "run", p)
			c.Dir, c.Env = f.dir, append(os.Environ(), "TMPDIR="+tmp)
			c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			pr, pw := io.Pipe()
			c.Stdout, c.Stderr = pw, pw
			require.NoError(t, c.Start())
			var log strings.Builder
			seen := make(chan struct{})
			go func() {
				sc := bufio.NewScanner(pr)
				closed := false
				for sc.Scan() {
					log.WriteString(sc.Text() + "\n")
					if tc.marker != "" && !closed && strings.Contains(sc.Text(), tc.marker) {
						close(seen)
						closed = true
					}
				}
			}()
			if tc.marker != "" {
				select {
				case <-seen:
				case <-time.After(3 * time.Minute):
					t.Fatal("the job did not start")
				}
			} else {
				time.Sleep(tc.after)
			}
			require.NoError(t, syscall.Kill(-c.Process.Pid, syscall.SIGINT))
			done := make(chan error, 1)
			go func() { done <- c.Wait(); pw.Close() }()
			select {
			case err := <-done:
				var ee *exec.ExitError
				require.ErrorAs(t, err, &ee, "an interrupted run does not pass")
				assert.NotEqual(t, ExitUsage, ee.ExitCode())
			case <-time.After(2 * time.Minute):
				t.Fatal("stint did not exit after SIGINT")
			}
			assert.Empty(t, lxcList(t, d), "no instance left on the remote")
			vols := strings.Fields(d.MustLxc(t, "storage", "volume", "list", d.Pool, "-f", "csv", "-c", "tn"))
			for _, v := range vols {
				if strings.HasPrefix(v, "custom,") {
					assert.Equal(t, "custom,stint-cache-sig", v, "only the job's cache volume is kept")
				} else {
					assert.True(t, strings.HasPrefix(v, "image,"), "no instance volume left: %s", v)
				}
			}
			imgs := strings.Fields(d.MustLxc(t, "image", "list", "-f", "csv", "-c", "f"))
			assert.LessOrEqual(t, len(imgs), 1, "at most the job's image is kept: %v", imgs)
			ents, _ := os.ReadDir(filepath.Join(f.root, "state"))
			for _, e := range ents {
				assert.False(t, strings.HasSuffix(e.Name(), ".json"), "state record left: %s", e.Name())
			}
			left, _ := os.ReadDir(tmp)
			assert.Empty(t, left, "temporary files left")
			t.Logf("%s", log.String())
		})
	}
}
