package simplestreams_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/internal/privlxd"
	"github.com/stintdev/stint/images/simplestreams"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
	lxd := privlxd.Start(t, p.ca)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- simplestreams.Serve(ctx, s, ln, p.cert, p.key) }()
	defer func() {
		cancel()
		assert.NoError(t, <-served)
	}()

	lxd.Lxc(t, "remote", "add", "stint", "https://"+ln.Addr().String(), "--protocol", "simplestreams", "--public")
	out := lxd.Lxc(t, "image", "list", "stint:", "--format", "json")
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
	stranger.CA = newPKI(t, t.TempDir()).ca
	_, err = stranger.Run(ctx, "lxc", "image", "list", "stint:")
	assert.ErrorContains(t, err, "certificate", "another CA does not trust the server")

	lxd.Lxc(t, "image", "copy", "stint:heldout/bb", "local:", "--alias", "bb")
	var info struct {
		Target string `json:"target"`
	}
	require.NoError(t, json.Unmarshal([]byte(lxd.Lxc(t, "query", "/1.0/images/aliases/bb")), &info))
	assert.Equal(t, img.Fingerprint, info.Target, "LXD computes stint's fingerprint")

	// The split image (metadata + squashfs, LXD's own format): LXD pulls
	// it with the same fingerprint, and so does another stint over TLS,
	// which unpacks it with unsquashfs.
	lxd.Lxc(t, "image", "copy", "stint:heldout/bb-split", "local:", "--alias", "bb-split")
	require.NoError(t, json.Unmarshal([]byte(lxd.Lxc(t, "query", "/1.0/images/aliases/bb-split")), &info))
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
	lxd.Launch(t, "stint:heldout/bb", name)
	var hn string
	for i := 0; i < 30; i++ {
		if o, err := lxd.Run(ctx, "lxc", "exec", name, "--", "cat", "/etc/hostname"); err == nil {
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
