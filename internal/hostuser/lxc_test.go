package hostuser

// The prototype of `host_user = true` on real LXC, before the runner wires
// it: a test user (created here, removed after), a busybox root given that
// user by AddTo, an unprivileged container whose id map has a hole for
// them, and their project bound read-write at the same path.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/internal/devpts"
	"github.com/stintdev/stint/internal/idmap"
	"github.com/stintdev/stint/internal/testenv"
)

// testUser makes a host user (testenv.MakeHostUser) and returns them as
// Invoking finds them under sudo.
func testUser(t *testing.T) User {
	t.Helper()
	hu := testenv.MakeHostUser(t)
	env := map[string]string{}
	for _, kv := range hu.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	u, err := Invoking(Options{Getenv: func(k string) string { return env[k] }})
	require.NoError(t, err)
	return u
}

// busyboxRoot builds a minimal root from the host's static busybox, owned
// by the container's root (m's host ids).
func busyboxRoot(t *testing.T, dir string, m idmap.Map) {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	require.NoError(t, err)
	for _, d := range []string{"bin", "etc", "dev", "proc", "sys", "tmp", "root", "home", ".stint"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755))
	for _, a := range []string{"sh", "id", "touch", "tty", "stat", "setsid", "sleep", "cat", "ls"} {
		require.NoError(t, os.Symlink("busybox", filepath.Join(dir, "bin", a)))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "etc/group"), []byte("root:x:0:\ntty:x:5:\n"), 0o644))
	require.NoError(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(m.HostUID), int(m.HostGID))
	}))
}

// protoConfig is the LXC config of the prototype: what runner/lxcrt
// renders for a job, with the hole map and the project bound at its own
// path. The /dev/pts lines are the ones a pty inside needs: autodev and a
// pty.max > 0 make LXC mount a devpts instance of the container's own at
// /dev/pts and bind its ptmx at /dev/ptmx.
func protoConfig(name, root, log, project string, h idmap.Holed) string {
	lines := []string{
		"lxc.uts.name = " + name,
		"lxc.rootfs.path = dir:" + root,
		"lxc.arch = linux64",
		"lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed",
		"lxc.autodev = 1",
		"lxc.pty.max = 16",
		"lxc.tty.max = 0",
		"lxc.console.path = none",
		"lxc.net.0.type = empty",
		"lxc.log.file = " + log,
		"lxc.log.level = WARN",
		"lxc.init.cmd = /.stint/init --name " + name + " --quiet -- /bin/busybox sleep infinity",
		"lxc.mount.entry = /usr/sbin/init.lxc.static .stint/init none bind,ro,create=file 0 0",
		"lxc.mount.entry = " + project + " " + strings.TrimPrefix(project, "/") + " none bind,create=dir 0 0",
	}
	if b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled"); err == nil && strings.TrimSpace(string(b)) == "Y" {
		lines = append(lines, "lxc.apparmor.profile = generated", "lxc.apparmor.allow_nesting = 0")
	} else {
		lines = append(lines, "lxc.apparmor.profile = unconfined")
	}
	for _, l := range h.LXC() {
		lines = append(lines, "lxc.idmap = "+l)
	}
	return strings.Join(lines, "\n") + "\n"
}

// proto is a running prototype container.
type proto struct {
	lxcpath, name string
	u             User
}

// attach runs argv in the container as the test user with a clean
// environment, stdin from /dev/null (so lxc-attach makes no terminal).
func (p proto) attach(t *testing.T, argv ...string) (string, error) {
	t.Helper()
	args := []string{"-P", p.lxcpath, "-n", p.name, "--clear-env",
		"-u", strconv.Itoa(int(p.u.UID)), "-g", strconv.Itoa(int(p.u.GID)),
		"-v", "PATH=/bin", "-v", "HOME=" + p.u.Home, "--"}
	cmd := exec.Command("lxc-attach", append(args, argv...)...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// TestHostUserLXC: in an unprivileged container with the hole map, the
// host user is themselves: `id` says their uid and name, a file they make
// in the project is theirs on the host, a host file of theirs is writable
// inside, their home is theirs, and a terminal of the container's own
// devpts is /dev/pts/N inside (tty works).
func TestHostUserLXC(t *testing.T) {
	testenv.RequiresLXC(t)
	testenv.RequiresTool(t, "lxc-attach", "lxc-info", "lxc-stop", "getent")
	if _, err := os.Stat("/usr/sbin/init.lxc.static"); err != nil {
		testenv.Unavailable(t, "the test needs /usr/sbin/init.lxc.static")
	}
	u := testUser(t)
	base := t.TempDir()
	testenv.Reachable(t, base)
	m, err := idmap.Ensure("/etc/subuid", "/etc/subgid")
	require.NoError(t, err)
	h, err := m.WithHole(u.UID, u.GID)
	require.NoError(t, err)

	root := filepath.Join(base, "rootfs")
	busyboxRoot(t, root, m)
	changed, err := AddTo(root, u)
	require.NoError(t, err)
	assert.Equal(t, []string{"/etc/passwd", "/etc/group"}, changed)
	made, err := MakeHome(root, u)
	require.NoError(t, err)
	require.True(t, made)

	project := filepath.Join(base, "project")
	require.NoError(t, os.Mkdir(project, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(project, "mine"), []byte("host\n"), 0o644))
	for _, p := range []string{project, filepath.Join(project, "mine")} {
		require.NoError(t, os.Chown(p, int(u.UID), int(u.GID)))
	}
	p, err := startProto(t, base, root, project, h, u, "/nonexistent")
	require.NoError(t, err)

	out, err := p.attach(t, "id")
	require.NoError(t, err, out)
	assert.Equal(t, fmt.Sprintf("uid=%d(%s) gid=%d(%s)", u.UID, u.Name, u.GID, u.Group), out)

	out, err = p.attach(t, "sh", "-c", "touch "+project+"/made-inside && echo inside >> "+project+"/mine && touch $HOME/dotfile")
	require.NoError(t, err, out)
	for _, f := range []string{filepath.Join(project, "made-inside"), filepath.Join(project, "mine"), filepath.Join(root, u.Home, "dotfile")} {
		var st unix.Stat_t
		require.NoError(t, unix.Stat(f, &st), f)
		assert.Equal(t, [2]uint32{u.UID, u.GID}, [2]uint32{st.Uid, st.Gid}, "owner of %s on the host", f)
	}
	b, err := os.ReadFile(filepath.Join(project, "mine"))
	require.NoError(t, err)
	assert.Equal(t, "host\ninside\n", string(b))

	// Everyone else stays unprivileged: the container's root is not host
	// root, and can't write the project's root-owned files.
	out, err = p.attachAs(t, 0, "sh", "-c", "id -u; echo x >> "+project+"/.rootfile")
	assert.Error(t, err, out)

	checkPty(t, p)
}

// attachAs runs argv as container uid and gid id.
func (p proto) attachAs(t *testing.T, id int, argv ...string) (string, error) {
	t.Helper()
	q := p
	q.u.UID, q.u.GID = uint32(id), uint32(id)
	return q.attach(t, argv...)
}

// startProto writes the config and starts the container with PATH for
// liblxc: "/nonexistent" as runner/lxcrt does (newuidmap hidden, so liblxc
// writes the map itself as root), or a real PATH (through newuidmap). A
// started container is stopped when the test ends.
func startProto(t *testing.T, base, root, project string, h idmap.Holed, u User, path string) (proto, error) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(project, ".rootfile"), []byte("root's\n"), 0o644))
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	// Not "stint-": stint's gc removes the empty cgroups of "stint-"
	// containers it has no record of, which a starting one has for a moment.
	p := proto{lxcpath: filepath.Join(base, "lxc"), name: "devenv-proto-" + hex.EncodeToString(rnd[:]), u: u}
	log := filepath.Join(base, p.name+".log")
	require.NoError(t, os.MkdirAll(filepath.Join(p.lxcpath, p.name), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(p.lxcpath, p.name, "config"),
		[]byte(protoConfig(p.name, root, log, project, h)), 0o644))
	cmd := exec.Command("/usr/bin/lxc-start", "-P", p.lxcpath, "-n", p.name)
	cmd.Env = []string{"PATH=" + path, "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		l, _ := os.ReadFile(log)
		return p, fmt.Errorf("lxc-start %s: %w: %s\n%s", p.name, err, out, l)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("lxc-stop", "-P", p.lxcpath, "-n", p.name, "-k").CombinedOutput(); err != nil {
			t.Errorf("lxc-stop %s: %v: %s", p.name, err, out)
		}
	})
	return p, nil
}

// TestReserveNewuidmap: when liblxc finds newuidmap (a config with hooks,
// or a runtime that doesn't hide it), the hole is refused until Reserve
// records it for root in /etc/subuid and /etc/subgid; then the container
// starts. The lines are removed again when the test ends.
func TestReserveNewuidmap(t *testing.T) {
	testenv.RequiresLXC(t)
	testenv.RequiresTool(t, "newuidmap", "newgidmap", "lxc-stop", "getent")
	u := testUser(t)
	base := t.TempDir()
	testenv.Reachable(t, base)
	m, err := idmap.Ensure("/etc/subuid", "/etc/subgid")
	require.NoError(t, err)
	h, err := m.WithHole(u.UID, u.GID)
	require.NoError(t, err)
	root := filepath.Join(base, "rootfs")
	busyboxRoot(t, root, m)
	project := filepath.Join(base, "project")
	require.NoError(t, os.Mkdir(project, 0o755))
	const path = "/usr/sbin:/usr/bin:/sbin:/bin"

	_, err = startProto(t, base, root, project, h, u, path)
	require.Error(t, err, "newuidmap took a hole that /etc/subuid doesn't allow")
	assert.Contains(t, err.Error(), "not allowed")

	// testenv.MakeHostUser's cleanup removes the lines Reserve adds.
	require.NoError(t, idmap.Reserve("/etc/subuid", "/etc/subgid", u.UID, u.GID))
	p, err := startProto(t, base, root, project, h, u, path)
	require.NoError(t, err)
	out, err := p.attach(t, "id", "-u")
	require.NoError(t, err, out)
	assert.Equal(t, strconv.Itoa(int(u.UID)), out)
}

// checkPty opens a terminal of the container's own devpts from the host,
// handed to the user, and runs `tty` on it inside: /dev/pts/N, theirs.
func checkPty(t *testing.T, p proto) {
	t.Helper()
	out, err := exec.Command("lxc-info", "-P", p.lxcpath, "-n", p.name, "-pH").Output()
	require.NoError(t, err)
	pid := strings.TrimSpace(string(out))
	pty, err := devpts.Open("/proc/"+pid+"/root", int(p.u.UID), -1)
	require.NoError(t, err)
	defer pty.Close()
	dev := fmt.Sprintf("/dev/pts/%d", pty.Index)
	got := make(chan string, 1)
	go func() {
		var buf bytes.Buffer
		b := make([]byte, 512)
		for !strings.Contains(buf.String(), "done") {
			n, err := pty.Master.Read(b)
			if err != nil {
				break
			}
			buf.Write(b[:n])
		}
		got <- buf.String()
	}()
	out2, err := p.attach(t, "sh", "-c", "setsid -c sh -c 'tty; stat -c %u "+dev+"; echo done' <"+dev+" >"+dev+" 2>&1")
	require.NoError(t, err, out2)
	select {
	case s := <-got:
		assert.Contains(t, s, dev+"\r\n"+strconv.Itoa(int(p.u.UID))+"\r\ndone")
	case <-time.After(10 * time.Second):
		t.Fatal("no output on the terminal")
	}
}
