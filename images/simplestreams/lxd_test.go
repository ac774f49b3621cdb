package simplestreams_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/simplestreams"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// privateLXD is an LXD daemon of the test's own (its own LXD_DIR and
// client config), so it collides with neither the host's LXD nor other
// tests. It trusts the test's CA only: SSL_CERT_FILE in its environment
// (and the client's) replaces the system's roots for that process.
type privateLXD struct {
	dir  string // LXD_DIR
	conf string // LXD_CONF (the lxc client's remotes)
	ca   string
}

func (l *privateLXD) env() []string {
	return append(os.Environ(), "LXD_DIR="+l.dir, "LXD_CONF="+l.conf, "SSL_CERT_FILE="+l.ca, "LC_ALL=C")
}

func (l *privateLXD) run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = l.env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (l *privateLXD) lxc(t *testing.T, args ...string) string {
	t.Helper()
	out, err := l.run(context.Background(), "lxc", args...)
	require.NoError(t, err)
	return out
}

// startLXD starts a private LXD trusting ca, initialised with a dir pool
// and no network; it is shut down and removed when the test ends.
func startLXD(t *testing.T, ca string) *privateLXD {
	t.Helper()
	testenv.RequiresRoot(t)
	testenv.RequiresTool(t, "lxd", "lxc")
	base, err := os.MkdirTemp("", "stint-lxd-")
	require.NoError(t, err)
	// Unprivileged containers' root must traverse to their rootfs.
	require.NoError(t, os.Chmod(base, 0o711))
	l := &privateLXD{dir: filepath.Join(base, "lxd"), conf: filepath.Join(base, "conf"), ca: ca}
	require.NoError(t, os.Mkdir(l.dir, 0o711))
	require.NoError(t, os.Mkdir(l.conf, 0o700))
	logf := filepath.Join(base, "lxd.log")
	cmd := exec.Command("lxd", "--group", "root", "--logfile", logf)
	cmd.Env = l.env()
	require.NoError(t, cmd.Start(), "start lxd")
	t.Cleanup(func() {
		if _, err := l.run(context.Background(), "lxd", "shutdown", "--timeout", "60"); err != nil {
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
	if _, err := l.run(context.Background(), "lxd", "waitready", "--timeout", "60"); err != nil {
		b, _ := os.ReadFile(logf)
		testenv.Unavailable(t, fmt.Sprintf("a private lxd did not start: %v\n%s", err, b))
	}
	init := exec.Command("lxd", "init", "--preseed")
	init.Env = l.env()
	init.Stdin = strings.NewReader("storage_pools:\n- name: default\n  driver: dir\nprofiles:\n- name: default\n  devices:\n    root:\n      path: /\n      pool: default\n      type: disk\n")
	out, err := init.CombinedOutput()
	require.NoError(t, err, "lxd init: %s", out)
	return l
}

// unmountBelow lazily unmounts whatever the daemon left mounted below dir
// (deepest first), so the directory can be removed.
func unmountBelow(t *testing.T, dir string) {
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

// The real LXD pulls from stint's image server over HTTPS (the test's own
// CA): `lxc remote add --protocol simplestreams`, `lxc image copy` by an
// alias with '/' and `lxc launch`; LXD computes the fingerprint stint has,
// and boots the image.
func TestLXDPullsFromServe(t *testing.T) {
	testenv.RequiresRoot(t)
	testenv.RequiresTool(t, "lxd", "lxc", "busybox", "mksquashfs", "unsquashfs")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newStore(t)
	img, err := images.BuildBusybox(ctx, s, images.BusyboxOptions{Aliases: []string{"heldout/bb"}})
	require.NoError(t, err)

	split := splitSquashfs(t, s, img)

	p := newPKI(t, t.TempDir())
	lxd := startLXD(t, p.ca)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- simplestreams.Serve(ctx, s, ln, p.cert, p.key) }()
	defer func() {
		cancel()
		assert.NoError(t, <-served)
	}()

	lxd.lxc(t, "remote", "add", "stint", "https://"+ln.Addr().String(), "--protocol", "simplestreams", "--public")
	out := lxd.lxc(t, "image", "list", "stint:", "--format", "json")
	var listed []struct {
		Fingerprint string `json:"fingerprint"`
		Aliases     []struct {
			Name string `json:"name"`
		} `json:"aliases"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &listed), out)
	require.Len(t, listed, 2)
	fps := []string{listed[0].Fingerprint, listed[1].Fingerprint}
	assert.ElementsMatch(t, []string{img.Fingerprint, split.Fingerprint}, fps)

	// The trust is the test's CA, given to these processes only: with
	// another CA the same client refuses the server.
	stranger := *lxd
	stranger.ca = newPKI(t, t.TempDir()).ca
	_, err = stranger.run(ctx, "lxc", "image", "list", "stint:")
	assert.ErrorContains(t, err, "certificate", "another CA does not trust the server")

	lxd.lxc(t, "image", "copy", "stint:heldout/bb", "local:", "--alias", "bb")
	var info struct {
		Target string `json:"target"`
	}
	require.NoError(t, json.Unmarshal([]byte(lxd.lxc(t, "query", "/1.0/images/aliases/bb")), &info))
	assert.Equal(t, img.Fingerprint, info.Target, "LXD computes stint's fingerprint")

	// The split image (metadata + squashfs, LXD's own format): LXD pulls
	// it with the same fingerprint, and so does another stint over TLS,
	// which unpacks it with unsquashfs.
	lxd.lxc(t, "image", "copy", "stint:heldout/bb-split", "local:", "--alias", "bb-split")
	require.NoError(t, json.Unmarshal([]byte(lxd.lxc(t, "query", "/1.0/images/aliases/bb-split")), &info))
	assert.Equal(t, split.Fingerprint, info.Target, "LXD computes the split image's fingerprint")
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(p.ca)
	require.NoError(t, err)
	pool.AppendCertsFromPEM(ca)
	c := newClient(t, "https://"+ln.Addr().String(), simplestreams.Options{RootCAs: pool})
	other := newStore(t)
	got, err := c.Pull(ctx, other, "heldout/bb-split", simplestreams.PullOptions{})
	require.NoError(t, err)
	assert.Equal(t, split.Fingerprint, got.Fingerprint)
	root := t.TempDir()
	_, err = other.Unpack(ctx, got, root, images.UnpackOptions{SkipDevices: true})
	require.NoError(t, err)
	target, err := os.Readlink(filepath.Join(root, "bin/sh"))
	require.NoError(t, err)
	assert.Equal(t, "/bin/busybox", target)

	name := "stint-serve-test"
	lxd.lxc(t, "launch", "stint:heldout/bb", name)
	defer func() { _, _ = lxd.run(context.Background(), "lxc", "delete", "--force", name) }()
	var hn string
	for i := 0; i < 30; i++ {
		if o, err := lxd.run(ctx, "lxc", "exec", name, "--", "cat", "/etc/hostname"); err == nil {
			hn = o
			break
		}
		time.Sleep(time.Second)
	}
	assert.Equal(t, name+"\n", hn, "LXD booted the image (hostname from its template)")
}

// splitSquashfs stores img's rootfs again as a split image with a squashfs
// rootfs, aliased heldout/bb-split.
func splitSquashfs(t *testing.T, s *images.Store, img *images.Image) *images.Image {
	t.Helper()
	ctx := context.Background()
	rootfs := t.TempDir()
	_, err := s.Unpack(ctx, img, rootfs, images.UnpackOptions{SkipDevices: true})
	require.NoError(t, err)
	dir := t.TempDir()
	meta := filepath.Join(dir, "meta.tar.xz")
	require.NoError(t, os.WriteFile(meta, xzOf(t, tarOf(t, "metadata.yaml",
		"architecture: "+images.HostArch()+"\ncreation_date: 1700000000\nproperties:\n  os: busybox\n  description: split\n")), 0o644))
	sq := filepath.Join(dir, "rootfs.squashfs")
	out, err := exec.Command("mksquashfs", rootfs, sq, "-noappend", "-quiet", "-comp", "xz").CombinedOutput()
	require.NoError(t, err, "mksquashfs: %s", out)
	split, err := s.Import(ctx, []string{meta, sq}, images.ImportOptions{Aliases: []string{"heldout/bb-split"}})
	require.NoError(t, err)
	return split
}
