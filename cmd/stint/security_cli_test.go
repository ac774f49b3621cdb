package main

import (
	"bytes"
	"fmt"
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

	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/internal/idmap"
	"github.com/stintdev/stint/internal/testenv"
)

// Security regressions found by review, driven through the stint binary.

// TestCLIInheritedFdNotInJob: a descriptor the caller left open (here fd 9,
// a directory of the host) must not reach the job's processes, where it
// would be a way out of the container's root.
func TestCLIInheritedFdNotInJob(t *testing.T) {
	f := newCLI(t)
	hostDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(hostDir, "secret"), []byte("host-only\n"), 0o644))
	p := f.spec(t, `
[job.fd]
image = "busybox"
run = ["ls /proc/self/fd/; if test -e /proc/self/fd/9; then echo FD9-VISIBLE; cat /proc/self/fd/9/secret; fi"]
`)
	dir, err := os.Open(hostDir)
	require.NoError(t, err)
	defer dir.Close()
	c := f.cmd("run", p)
	// ExtraFiles[i] becomes fd 3+i: pad up to 9 with the same descriptor.
	c.ExtraFiles = []*os.File{dir, dir, dir, dir, dir, dir, dir}
	out, err := c.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.NotContains(t, string(out), "FD9-VISIBLE")
	assert.NotContains(t, string(out), "host-only")

	// stint exec likewise.
	c = f.cmd("exec", "busybox", "--", "sh", "-c", "test -e /proc/self/fd/9 && echo FD9-VISIBLE; ls /proc/self/fd/")
	c.ExtraFiles = []*os.File{dir, dir, dir, dir, dir, dir, dir}
	out, err = c.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.NotContains(t, string(out), "FD9-VISIBLE")
	f.assertClean(t)
}

// TestCLISecretsNotInArgvLogsPrivate: a job's environment never shows in any
// process's command line (every local user reads those), and its log is
// readable by root only.
func TestCLISecretsNotInArgvLogsPrivate(t *testing.T) {
	f := newCLI(t)
	const secret = "s3cr3t-token-value-93kd"
	p := f.spec(t, `
[job.secret]
image = "busybox"
env = { API_TOKEN = "`+secret+`" }
run = ["echo sleep''ing; sleep 3"]
`)
	c := f.startUntil(t, "sleeping", "run", p)
	var leaks []string
	for i := 0; i < 5; i++ {
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, pc := range procs {
			b, err := os.ReadFile(pc)
			if err == nil && bytes.Contains(b, []byte(secret)) {
				leaks = append(leaks, pc+": "+strings.ReplaceAll(string(b), "\x00", " "))
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	assert.Empty(t, leaks, "the job's env is in a command line")
	require.NoError(t, c.Wait())

	fi, err := os.Stat(filepath.Join(f.root, "logs"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "logs dir mode")
	logs, err := filepath.Glob(filepath.Join(f.root, "logs", "*.log"))
	require.NoError(t, err)
	require.NotEmpty(t, logs)
	for _, l := range logs {
		fi, err := os.Stat(l)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "log %s mode", l)
	}
	f.assertClean(t)
}

// TestCLIReadonlyMountsLocked: container root must not be able to remount a
// readonly bind or cache mount read-write (the kernel refuses: the mount's
// read-only flag is locked), nor write through it; and nothing stint
// mounted for it stays mounted after teardown, or after kill -9 and gc.
func TestCLIReadonlyMountsLocked(t *testing.T) {
	f := newCLI(t)
	m, err := idmap.Ensure("/etc/subuid", "/etc/subgid")
	require.NoError(t, err)
	// Owned by the container's root, so only the mount's flag stops a write.
	src := t.TempDir()
	require.NoError(t, os.Chmod(src, 0o755))
	require.NoError(t, os.Chown(src, int(m.HostUID), int(m.HostGID)))
	cacheDir := filepath.Join(f.root, "cache", "c1")
	require.NoError(t, os.MkdirAll(cacheDir, 0o755))
	require.NoError(t, os.Chown(cacheDir, int(m.HostUID), int(m.HostGID)))
	probe := func(dir string) string {
		return "if /.stint/busybox mount -o remount,bind,rw " + dir + "; then echo REMOUNTED" + dir + "; fi; " +
			"if echo poisoned > " + dir + "/x; then echo WROTE" + dir + "; fi; " +
			"if /.stint/busybox mount -o remount,rw " + dir + "; then echo REMOUNTED2" + dir + "; fi"
	}
	p := f.spec(t, `
[job.ro]
image = "busybox"
run = ["`+probe("/ro")+`", "`+probe("/cache")+`", "echo probe''s-done", "sleep ${wait}"]

[job.ro.matrix]
wait = ["0"]

[[job.ro.mount]]
source = "`+src+`"
target = "/ro"
readonly = true

[[job.ro.mount]]
type = "cache"
name = "c1"
target = "/cache"
readonly = true
`)
	out, code := f.run(t, "run", p)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "probes-done")
	for _, bad := range []string{"REMOUNTED", "WROTE"} {
		assert.NotContains(t, out, bad, "a readonly mount was made writable")
	}
	assert.NoFileExists(t, filepath.Join(src, "x"))
	assert.NoFileExists(t, filepath.Join(cacheDir, "x"))
	assert.Empty(t, stagedMountsUnder(t, f.root), "mounts left after teardown")
	f.assertClean(t)

	// kill -9 while the job runs, then gc.
	require.NoError(t, os.WriteFile(p, []byte(strings.Replace(mustRead(t, p), `wait = ["0"]`, `wait = ["600"]`, 1)), 0o644))
	c := f.startUntil(t, "probes-done", "run", p)
	assert.NotEmpty(t, stagedMountsUnder(t, f.root), "the staged mounts should exist while the job runs")
	require.NoError(t, c.Process.Signal(syscall.SIGKILL))
	_ = c.Wait()
	out, code = f.run(t, "gc")
	require.Equal(t, 0, code, out)
	assert.Empty(t, stagedMountsUnder(t, f.root), "mounts left after kill -9 and gc")
	f.assertClean(t)
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

// mountsUnder lists the host's mount points below root, other than the
// storage driver's (its golden and clone volumes).
func stagedMountsUnder(t *testing.T, root string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		fs := strings.Fields(line)
		if len(fs) < 5 || !strings.HasPrefix(fs[4], root+"/") {
			continue
		}
		if strings.HasPrefix(fs[4], filepath.Join(root, "storage")+"/") {
			continue
		}
		out = append(out, fs[4])
	}
	return out
}

// stiProgram injects "echo INJECTED" into its stdin's terminal with TIOCSTI:
// what a container process would do to type into the host's shell.
const stiProgram = `package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

func main() {
	fd := 0 // or the descriptor named by the first argument
	if len(os.Args) > 1 {
		fd, _ = strconv.Atoi(os.Args[1])
	}
	for _, c := range []byte("echo INJECTED\n") {
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCSTI, uintptr(unsafe.Pointer(&c))); e != 0 {
			fmt.Println("sti failed:", e)
			os.Exit(1)
		}
	}
	fmt.Println("sti ok")
}
`

// openTestPty opens a pseudo-terminal pair: master and slave.
func openTestPty(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	require.NoError(t, unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0))
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY)
	if errno != 0 {
		unix.Close(mfd)
		t.Fatalf("TIOCGPTPEER: %v", errno)
	}
	m, s := os.NewFile(uintptr(mfd), "ptmx"), os.NewFile(sfd, "pts")
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// TestCLIExecTTYOwnPty: on a terminal, `stint exec` gives the command a
// terminal of its own, not the caller's: TIOCSTI from inside types into
// that one, never into the caller's (the host shell's) input.
func TestCLIExecTTYOwnPty(t *testing.T) {
	f := newCLI(t)
	tools := stiTools(t)

	master, slave := openTestPty(t)
	require.NoError(t, unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 101}))
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	require.NoError(t, err)
	var outer unix.Stat_t
	require.NoError(t, unix.Fstat(int(slave.Fd()), &outer))
	c := f.cmd("exec", "--mount", tools+":/tools:ro", "busybox", "--", "sh", "-c",
		"stat -L -c 'dev=%t:%T fs=%d' /proc/self/fd/0; tty; echo size $(stty size); /tools/sti; echo exec-done")
	c.Stdin, c.Stdout, c.Stderr = slave, slave, slave
	c.SysProcAttr = &unix.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	var shown testenv.SyncBuffer
	go func() { _, _ = io.Copy(&shown, master) }()
	require.NoError(t, c.Start())
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, shown.String())
	case <-time.After(90 * time.Second):
		_ = c.Process.Kill()
		t.Fatalf("stint exec hung:\n%s", shown.String())
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(shown.String(), "exec-done") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	assert.Contains(t, shown.String(), "sti ok", "the injection was not even tried")
	// Each devpts instance numbers its terminals from 0, so the device
	// number alone does not tell them apart: the filesystem does.
	outerDev := fmt.Sprintf("dev=%x:%x fs=%d", unix.Major(outer.Rdev), unix.Minor(outer.Rdev), outer.Dev)
	assert.Contains(t, shown.String(), "dev=", shown.String())
	assert.Contains(t, shown.String(), "size 33 101", "the window size was not passed on")
	assert.NotContains(t, shown.String(), outerDev, "the command's stdin is the caller's terminal")
	assert.Regexp(t, `/dev/pts/\d+`, shown.String(), "tty names the command's terminal inside")

	after, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	require.NoError(t, err)
	assert.Equal(t, before, after, "the caller's terminal modes were not restored")

	// Whatever was typed into the caller's terminal is still in its input
	// queue: read it without blocking.
	require.NoError(t, unix.SetNonblock(int(slave.Fd()), true))
	buf := make([]byte, 256)
	n, _ := unix.Read(int(slave.Fd()), buf)
	assert.NotContains(t, string(buf[:max(n, 0)]), "INJECTED", "TIOCSTI typed into the caller's terminal")
	f.assertClean(t)
}

// TestCLIExecNoTerminalLeaks: without a terminal on stdout (`stint exec
// IMG -- cmd > log` typed at a shell), stdin and stderr are still the
// caller's terminal. The command must get neither: TIOCSTI through fd 0 or
// fd 2 would type into the caller's shell.
func TestCLIExecNoTerminalLeaks(t *testing.T) {
	f := newCLI(t)
	tools := stiTools(t)

	master, slave := openTestPty(t)
	go func() { _, _ = io.Copy(io.Discard, master) }()
	log, err := os.Create(filepath.Join(t.TempDir(), "log"))
	require.NoError(t, err)
	defer log.Close()
	c := f.cmd("exec", "--mount", tools+":/tools:ro", "busybox", "--", "sh", "-c",
		"/tools/sti 0; /tools/sti 2; echo exec-done")
	c.Stdin, c.Stdout, c.Stderr = slave, log, slave
	c.SysProcAttr = &unix.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	require.NoError(t, c.Run())
	got, err := os.ReadFile(log.Name())
	require.NoError(t, err)
	assert.Contains(t, string(got), "exec-done")
	assert.NotContains(t, string(got), "sti ok", "a terminal of the caller's reached the command")

	require.NoError(t, unix.SetNonblock(int(slave.Fd()), true))
	buf := make([]byte, 256)
	n, _ := unix.Read(int(slave.Fd()), buf)
	assert.NotContains(t, string(buf[:max(n, 0)]), "INJECTED", "TIOCSTI typed into the caller's terminal")
	f.assertClean(t)
}

// stiTools allows TIOCSTI on this kernel when it must be asked for, and
// builds stiProgram into a directory to bind-mount into a container.
func stiTools(t *testing.T) string {
	t.Helper()
	if b, err := os.ReadFile("/proc/sys/dev/tty/legacy_tiocsti"); err == nil && strings.TrimSpace(string(b)) == "0" {
		// The attack needs TIOCSTI, which this kernel allows only when asked.
		if err := os.WriteFile("/proc/sys/dev/tty/legacy_tiocsti", []byte("1"), 0o644); err != nil {
			testenv.Unavailable(t, "cannot allow TIOCSTI (dev.tty.legacy_tiocsti): "+err.Error())
		}
		t.Cleanup(func() { _ = os.WriteFile("/proc/sys/dev/tty/legacy_tiocsti", []byte("0"), 0o644) })
	}
	tools := t.TempDir()
	require.NoError(t, os.Chmod(tools, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(tools, "main.go"), []byte(stiProgram), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(tools, "go.mod"), []byte("module sti\n\ngo 1.22\n"), 0o644))
	build := exec.Command(goTool(), "build", "-o", "sti", ".")
	build.Dir, build.Env = tools, append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))
	return tools
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}
