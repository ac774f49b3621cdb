// Package privlxd starts private LXD daemons for tests: each with its own
// LXD_DIR and client configuration, so it collides neither with the host's
// LXD nor with other tests, and trusting only the CA it is given.
package privlxd

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// LXD is an LXD daemon of the test's own (its own LXD_DIR and
// client config), so it collides with neither the host's LXD nor other
// tests. It trusts the test's CA only: SSL_CERT_FILE in its environment
// (and the client's) replaces the system's roots for that process.
type LXD struct {
	Dir  string // LXD_DIR
	Conf string // LXD_CONF (the lxc client's remotes)
	CA   string // SSL_CERT_FILE: the only CA it trusts
}

// Env is the environment of the daemon and its clients. The proxy
// variables point at a closed loopback port, so what LXD fetches from the
// internet by itself (its instance types at start-up) fails at once
// without a DNS query leaving the host; loopback is never proxied.
func (l *LXD) Env() []string {
	return append(os.Environ(), "LXD_DIR="+l.Dir, "LXD_CONF="+l.Conf, "SSL_CERT_FILE="+l.CA, "LC_ALL=C",
		"HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY=127.0.0.1,localhost,::1",
		"https_proxy=http://127.0.0.1:9", "http_proxy=http://127.0.0.1:9", "no_proxy=127.0.0.1,localhost,::1")
}

// Launch launches name from image; on failure the container's LXC log
// is in the test's output.
func (l *LXD) Launch(t testing.TB, image, name string) {
	t.Helper()
	t.Cleanup(func() { _, _ = l.Run(context.Background(), "lxc", "delete", "--force", name) })
	if _, err := l.Run(context.Background(), "lxc", "launch", image, name); err != nil {
		log, _ := l.Run(context.Background(), "lxc", "info", "--show-log", name)
		t.Fatalf("%v\n%s", err, log)
	}
}

// Run runs name (lxc, lxd) against the daemon, with a timeout.
func (l *LXD) Run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = l.Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Lxc runs the lxc client against the daemon; failure fails t.
func (l *LXD) Lxc(t testing.TB, args ...string) string {
	t.Helper()
	out, err := l.Run(context.Background(), "lxc", args...)
	require.NoError(t, err)
	return out
}

// Start starts a private LXD trusting ca, initialised with a dir pool
// and no network; it is shut down and removed when the test ends.
func Start(t testing.TB, ca string) *LXD {
	t.Helper()
	testenv.RequiresRoot(t)
	testenv.RequiresTool(t, "lxd", "lxc")
	base, err := os.MkdirTemp("", "stint-lxd-")
	require.NoError(t, err)
	// Unprivileged containers' root must traverse to their rootfs.
	require.NoError(t, os.Chmod(base, 0o711))
	l := &LXD{Dir: filepath.Join(base, "lxd"), Conf: filepath.Join(base, "conf"), CA: ca}
	require.NoError(t, os.Mkdir(l.Dir, 0o711))
	require.NoError(t, os.Mkdir(l.Conf, 0o700))
	logf := filepath.Join(base, "lxd.log")
	cmd := exec.Command("lxd", "--group", "root", "--logfile", logf)
	cmd.Env = l.Env()
	require.NoError(t, cmd.Start(), "start lxd")
	t.Cleanup(func() {
		if _, err := l.Run(context.Background(), "lxd", "shutdown", "--timeout", "60"); err != nil {
			t.Logf("lxd shutdown: %v", err)
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
		unmountBelow(t, base)
		if t.Failed() {
			if b, err := os.ReadFile(logf); err == nil {
				t.Logf("private lxd log:\n%s", b)
			}
		}
		if err := os.RemoveAll(base); err != nil {
			t.Logf("remove %s: %v", base, err)
		}
	})
	if _, err := l.Run(context.Background(), "lxd", "waitready", "--timeout", "60"); err != nil {
		b, _ := os.ReadFile(logf)
		testenv.Unavailable(t, fmt.Sprintf("a private lxd did not start: %v\n%s", err, b))
	}
	init := exec.Command("lxd", "init", "--preseed")
	init.Env = l.Env()
	init.Stdin = strings.NewReader("storage_pools:\n- name: default\n  driver: dir\nprofiles:\n- name: default\n  devices:\n    root:\n      path: /\n      pool: default\n      type: disk\n")
	out, err := init.CombinedOutput()
	require.NoError(t, err, "lxd init: %s", out)
	return l
}

// unmountBelow lazily unmounts whatever the daemon left mounted below dir
// (deepest first), so the directory can be removed.
func unmountBelow(t testing.TB, dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			mounts = append(mounts, fields[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := unix.Unmount(mounts[i], unix.MNT_DETACH); err != nil {
			t.Logf("unmount %s: %v", mounts[i], err)
		}
	}
}
