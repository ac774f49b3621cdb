// Package lxdenv gives Go tests real LXD daemons of their own: Daemon, a
// private LXD (its own LXD_DIR, unix socket and HTTPS on loopback), and
// Cluster, a 3-member LXD cluster on this host (three daemons, each in its
// own network namespace on a test bridge). Both are torn down when the test
// ends, leaving no process, mount, directory, namespace or route behind.
//
// The host's own LXD (if one runs) is never touched: every lxd and lxc this
// package runs has LXD_DIR (and LXD_CONF) pointing at its own directories.
// Names are unique per process (the temporary directory, the cluster
// prefix), a cluster takes a host-wide lock so two test binaries never build
// on the same addresses, and nothing sends traffic beyond loopback and the
// cluster's own bridge: a private daemon gets a dead loopback proxy for the
// downloads LXD attempts on its own (instance types), a cluster's members
// live in namespaces with no route out, and the cluster's /16 gets an
// unreachable route before anything is addressed in it.
//
// Gates: root and the lxd and lxc tools (internal/testenv), so a plain
// `go test` skips and STINT_INTEGRATION=1 fails.
package lxdenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stintdev/stint/internal/testenv"
	"golang.org/x/sys/unix"
)

// Daemon is a private LXD daemon.
type Daemon struct {
	Dir    string // its LXD_DIR
	Socket string // Dir/unix.socket
	URL    string // https://127.0.0.1:PORT
	Pool   string // its dir storage pool ("default")
	conf   string // LXD_CONF for lxc
	cmd    *exec.Cmd
}

// Requires gates a test on what a daemon needs.
func Requires(t testing.TB) {
	t.Helper()
	testenv.RequiresRoot(t)
	testenv.RequiresTool(t, "lxd", "lxc")
}

// dirPrefix names every private daemon's directory under os.TempDir.
const dirPrefix = "stint-lxdenv-"

// StartDaemon starts a private LXD for t: a dir pool "default" in the
// default profile, no managed network (a container gets no NIC unless the
// test adds one), HTTPS on 127.0.0.1 at a free port. It is shut down and
// removed when t ends.
func StartDaemon(t testing.TB) *Daemon {
	t.Helper()
	Requires(t)
	sweep(t)
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		t.Fatalf("lxdenv: %v", err)
	}
	// The containers' mapped root must search its way to their rootfs.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatalf("lxdenv: %v", err)
	}
	d := &Daemon{Dir: dir, Socket: filepath.Join(dir, "unix.socket"), Pool: "default", conf: filepath.Join(dir, "lxcconf")}
	t.Cleanup(func() { d.stop(t) })
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatalf("lxdenv: %v", err)
	}
	d.cmd = exec.Command("lxd", "--group", "root", "--logfile", filepath.Join(dir, "lxd.log"))
	d.cmd.Env = append(os.Environ(), d.env()...)
	// LXD fetches instance types from the internet at start: a dead
	// loopback proxy keeps that (and any other download) on this host.
	d.cmd.Env = append(d.cmd.Env, "HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY=")
	out, err := os.Create(filepath.Join(dir, "daemon.out"))
	if err != nil {
		t.Fatalf("lxdenv: %v", err)
	}
	defer out.Close()
	d.cmd.Stdout, d.cmd.Stderr = out, out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("lxdenv: start lxd: %v", err)
	}
	_ = os.WriteFile(filepath.Join(dir, "lxd.pid"), []byte(strconv.Itoa(d.cmd.Process.Pid)), 0o644)
	if _, err := d.run(context.Background(), nil, "lxd", "waitready", "--timeout", "60"); err != nil {
		t.Fatalf("lxdenv: lxd did not start: %v\n%s", err, d.log())
	}
	preseed := "storage_pools:\n- name: default\n  driver: dir\nprofiles:\n- name: default\n  devices:\n    root: {path: /, pool: default, type: disk}\n"
	if _, err := d.run(context.Background(), strings.NewReader(preseed), "lxd", "init", "--preseed"); err != nil {
		t.Fatalf("lxdenv: lxd init: %v\n%s", err, d.log())
	}
	for try := 0; ; try++ {
		addr := freePort(t)
		_, err := d.Lxc(context.Background(), "config", "set", "core.https_address", addr)
		if err == nil {
			d.URL = "https://" + addr
			break
		}
		if try == 4 {
			t.Fatalf("lxdenv: core.https_address: %v", err)
		}
	}
	return d
}

func (d *Daemon) env() []string {
	return []string{"LXD_DIR=" + d.Dir, "LXD_CONF=" + d.conf}
}

// run runs an lxd or lxc command against this daemon.
func (d *Daemon) run(ctx context.Context, stdin *strings.Reader, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), d.env()...)
	cmd.Env = append(cmd.Env, "LC_ALL=C")
	if stdin != nil {
		cmd.Stdin = stdin
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Lxc runs the lxc client against this daemon's unix socket.
func (d *Daemon) Lxc(ctx context.Context, args ...string) (string, error) {
	return d.run(ctx, nil, "lxc", args...)
}

// MustLxc is Lxc failing t on an error.
func (d *Daemon) MustLxc(t testing.TB, args ...string) string {
	t.Helper()
	out, err := d.Lxc(context.Background(), args...)
	if err != nil {
		t.Fatalf("lxdenv: %v", err)
	}
	return out
}

// TrustToken issues a trust token for a client called name
// (`lxc config trust add --name NAME`).
func (d *Daemon) TrustToken(t testing.TB, name string) string {
	t.Helper()
	return lastLine(d.MustLxc(t, "config", "trust", "add", "--name", name, "--quiet"))
}

func lastLine(s string) string {
	lines := strings.Fields(strings.TrimSpace(s))
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}

func (d *Daemon) log() string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "lxd.log"))
	o, _ := os.ReadFile(filepath.Join(d.Dir, "daemon.out"))
	return string(b) + string(o)
}

// stop deletes every instance, shuts the daemon down (killing it if it
// won't go), unmounts what it left under Dir and removes Dir.
func (d *Daemon) stop(t testing.TB) {
	if d.cmd != nil && d.cmd.Process != nil {
		done := make(chan struct{})
		go func() { _ = d.cmd.Wait(); close(done) }()
		d.shutdown(t, d.cmd.Process.Pid, done)
	}
	if err := removeTree(d.Dir); err != nil {
		t.Errorf("lxdenv: %v", err)
	}
}

// shutdown deletes the daemon's instances and shuts down its lxd (pid),
// killing it when it is still there 30 s later; done closes when it is
// gone (nil: poll).
func (d *Daemon) shutdown(t testing.TB, pid int, done <-chan struct{}) {
	ctx := context.Background()
	if _, err := os.Stat(d.Socket); err == nil {
		if out, err := d.Lxc(ctx, "list", "-c", "n", "-f", "csv"); err == nil {
			for _, n := range strings.Fields(out) {
				_, _ = d.Lxc(ctx, "delete", "--force", n)
			}
		}
		if _, err := d.run(ctx, nil, "lxd", "shutdown", "--timeout", "60"); err != nil {
			t.Logf("lxdenv: %v", err)
		}
	}
	if done == nil {
		c := make(chan struct{})
		go func() {
			for alive(pid) {
				time.Sleep(100 * time.Millisecond)
			}
			close(c)
		}()
		done = c
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = unix.Kill(pid, unix.SIGKILL)
		<-done
	}
}

// removeTree unmounts everything mounted at or below dir (deepest first)
// and removes dir.
func removeTree(dir string) error {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			return fmt.Errorf("unmount %s: %w", m, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescape(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out, nil
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// freePort returns 127.0.0.1:PORT for a port free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("lxdenv: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// sweep removes private daemons whose test process is gone (a test binary
// killed by its timeout never ran its cleanup). Only directories under
// os.TempDir named by dirPrefix, and only the lxd whose pid file is there
// and whose command line names that directory's log, are touched.
func sweep(t testing.TB) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		owner, err := readPid(filepath.Join(dir, "owner.pid"))
		if err != nil || alive(owner) {
			continue
		}
		if pid, err := readPid(filepath.Join(dir, "lxd.pid")); err == nil && alive(pid) {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if strings.Contains(string(cmdline), filepath.Join(dir, "lxd.log")) {
				d := &Daemon{Dir: dir, Socket: filepath.Join(dir, "unix.socket"), conf: filepath.Join(dir, "lxcconf")}
				d.shutdown(t, pid, nil)
			}
		}
		if err := removeTree(dir); err != nil {
			t.Logf("lxdenv: sweep %s: %v", dir, err)
		}
	}
}

func readPid(p string) (int, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func alive(pid int) bool { return pid > 0 && unix.Kill(pid, 0) == nil }
