package lxdtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/internal/sysexec"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lxc runs the lxc client with a timeout.
func lxc(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := sysexec.Run(ctx, "lxc", args...)
	require.NoError(t, err, "lxc %s", strings.Join(args, " "))
	return string(out)
}

// ensureLXD makes sure an initialised LXD answers; an LXD this test
// started is shut down when the test ends.
func ensureLXD(t *testing.T) {
	t.Helper()
	testenv.RequiresRoot(t)
	testenv.RequiresTool(t, "lxd", "lxc", "mksquashfs")
	ctx := context.Background()
	if _, err := sysexec.Run(ctx, "lxd", "waitready", "--timeout", "2"); err != nil {
		log := filepath.Join(os.TempDir(), fmt.Sprintf("stint-lxdtest-%d.log", os.Getpid()))
		cmd := exec.Command("lxd", "--group", "root", "--logfile", log)
		// LXD fetches instance types from the internet at start-up: a
		// closed loopback proxy makes that fail without a DNS query
		// leaving the host (loopback is never proxied).
		cmd.Env = append(os.Environ(), "HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY=127.0.0.1,localhost,::1")
		require.NoError(t, cmd.Start(), "start lxd")
		t.Cleanup(func() {
			out, err := exec.Command("lxd", "shutdown", "--timeout", "60").CombinedOutput()
			if err != nil {
				t.Logf("lxd shutdown: %v: %s", err, out)
				_ = cmd.Process.Kill()
			}
			_ = cmd.Wait()
			os.Remove(log)
		})
		if _, err := sysexec.Run(ctx, "lxd", "waitready", "--timeout", "60"); err != nil {
			b, _ := os.ReadFile(log)
			testenv.Unavailable(t, fmt.Sprintf("lxd did not start: %v\n%s", err, b))
		}
	}
	// Never initialised: a dir pool and no network (no lxdbr0 here, and a
	// test must not add a bridge to the host that outlives it).
	if out := lxc(t, "storage", "list", "--format", "csv"); strings.TrimSpace(out) == "" {
		cmd := exec.Command("lxd", "init", "--preseed")
		cmd.Stdin = strings.NewReader("storage_pools:\n- name: default\n  driver: dir\nprofiles:\n- name: default\n  devices:\n    root:\n      path: /\n      pool: default\n      type: disk\n")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "lxd init: %s", out)
	}
}

type lxdImage struct {
	Fingerprint string `json:"fingerprint"`
}

// importLXD imports files into LXD and returns the fingerprint LXD computed;
// the image is deleted from LXD when the test ends.
func importLXD(t *testing.T, files ...string) string {
	t.Helper()
	alias := fmt.Sprintf("stint-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	lxc(t, append(append([]string{"image", "import"}, files...), "--alias", alias)...)
	var info lxdImage
	require.NoError(t, json.Unmarshal([]byte(lxc(t, "query", "/1.0/images/aliases/"+alias)), &struct {
		Target *string `json:"target"`
	}{&info.Fingerprint}))
	require.Len(t, info.Fingerprint, 64)
	t.Cleanup(func() { _, _ = sysexec.Run(context.Background(), "lxc", "image", "delete", info.Fingerprint) })
	return info.Fingerprint
}

func names(paths []string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, filepath.Base(p))
	}
	sort.Strings(out)
	return out
}

func lsDir(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		out = append(out, filepath.Join(dir, e.Name()))
	}
	return out
}

// TestStintImageInLXD: a stint busybox image imports into LXD with the same
// fingerprint, LXD launches it (templates applied), and an image LXD makes
// from it (lxc publish, lxc image export) imports into stint unchanged.
func TestStintImageInLXD(t *testing.T) {
	ensureLXD(t)
	ctx := context.Background()
	s, err := images.Open(filepath.Join(t.TempDir(), "images"))
	require.NoError(t, err)
	// A property of this run's own makes the fingerprint unique, so an
	// identical busybox image already in LXD (make bench imports one) can't
	// make the import fail, and the cleanup deletes only what the test made.
	img, err := images.BuildBusybox(ctx, s, images.BusyboxOptions{
		Properties: map[string]string{"stint.test": fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())},
	})
	require.NoError(t, err)
	exp := t.TempDir()
	files, err := s.Export(ctx, img, exp, nil)
	require.NoError(t, err)

	fp := importLXD(t, files...)
	assert.Equal(t, img.Fingerprint, fp, "LXD computes the same fingerprint")

	// LXD boots it: busybox init as PID 1, /etc/hostname from the template.
	name := fmt.Sprintf("stint-test-%d", os.Getpid())
	t.Cleanup(func() { _, _ = sysexec.Run(context.Background(), "lxc", "delete", "--force", name) })
	lxc(t, "launch", fp, name)
	var out string
	for i := 0; i < 30; i++ {
		o, err := sysexec.Run(ctx, "lxc", "exec", name, "--", "/bin/sh", "-c", "cat /etc/hostname; cat /proc/1/comm")
		if err == nil {
			out = string(o)
			break
		}
		time.Sleep(time.Second)
	}
	assert.Equal(t, name+"\ninit\n", out)
	lxc(t, "stop", name, "--timeout", "30")

	// LXD's own image of it: publish (xz), export, import into stint.
	pubAlias := name + "-pub"
	lxc(t, "publish", name, "--alias", pubAlias, "--compression", "xz")
	var pub struct {
		Target string `json:"target"`
	}
	require.NoError(t, json.Unmarshal([]byte(lxc(t, "query", "/1.0/images/aliases/"+pubAlias)), &pub))
	t.Cleanup(func() { _, _ = sysexec.Run(context.Background(), "lxc", "image", "delete", pub.Target) })
	lxdExp := t.TempDir()
	lxc(t, "image", "export", pub.Target, lxdExp+"/")
	lxdFiles := lsDir(t, lxdExp)
	require.Len(t, lxdFiles, 1, "lxc publish makes a unified image")

	got, err := s.Import(ctx, lxdFiles, images.ImportOptions{Fingerprint: pub.Target})
	require.NoError(t, err, "stint imports LXD's export with LXD's fingerprint")
	assert.Equal(t, pub.Target, got.Fingerprint)
	assert.Equal(t, "xz", got.Compression)
	assert.Equal(t, names(lxdFiles), got.ExportNames(), "stint names exports like LXD")
	root := t.TempDir()
	_, err = s.Unpack(ctx, got, root, images.UnpackOptions{SkipDevices: true})
	require.NoError(t, err)
	hn, err := os.ReadFile(filepath.Join(root, "etc/hostname"))
	require.NoError(t, err)
	assert.Equal(t, name+"\n", string(hn), "the published rootfs is the launched container's")
}

// TestSplitSquashfsWithLXD: a split image (metadata tarball + squashfs
// rootfs, LXD's own split format) has the same fingerprint in both, and
// LXD's export of it imports into stint and exports under the same names.
func TestSplitSquashfsWithLXD(t *testing.T) {
	ensureLXD(t)
	ctx := context.Background()
	s, err := images.Open(filepath.Join(t.TempDir(), "images"))
	require.NoError(t, err)
	bb, err := images.BuildBusybox(ctx, s, images.BusyboxOptions{})
	require.NoError(t, err)
	rootfs := t.TempDir()
	_, err = s.Unpack(ctx, bb, rootfs, images.UnpackOptions{SkipDevices: true})
	require.NoError(t, err)

	dir := t.TempDir()
	meta := filepath.Join(dir, "meta.tar.xz")
	md := t.TempDir()
	created := time.Now().Unix()
	require.NoError(t, os.WriteFile(filepath.Join(md, "metadata.yaml"), fmt.Appendf(nil,
		"architecture: %s\ncreation_date: %d\nproperties:\n  os: busybox\n  description: split test\n", images.HostArch(), created), 0o644))
	_, err = sysexec.Run(ctx, "tar", "-C", md, "-cJf", meta, "metadata.yaml")
	require.NoError(t, err)
	sq := filepath.Join(dir, "rootfs.squashfs")
	_, err = sysexec.Run(ctx, "mksquashfs", rootfs, sq, "-noappend", "-quiet", "-comp", "xz")
	require.NoError(t, err)

	img, err := s.Import(ctx, []string{meta, sq}, images.ImportOptions{})
	require.NoError(t, err)
	assert.True(t, img.Split)
	assert.Equal(t, "squashfs", img.RootfsFormat)
	fp := importLXD(t, meta, sq)
	assert.Equal(t, img.Fingerprint, fp, "split fingerprint agrees with LXD")

	lxdExp := t.TempDir()
	lxc(t, "image", "export", fp, lxdExp+"/")
	lxdFiles := lsDir(t, lxdExp)
	require.Len(t, lxdFiles, 2)
	assert.Equal(t, names(lxdFiles), func() []string { n := img.ExportNames(); sort.Strings(n); return n }())

	other, err := images.Open(filepath.Join(t.TempDir(), "images"))
	require.NoError(t, err)
	// LXD names the metadata first (meta-...): order the files for import.
	sort.Slice(lxdFiles, func(i, j int) bool { return strings.Contains(filepath.Base(lxdFiles[i]), "meta-") })
	got, err := other.Import(ctx, lxdFiles, images.ImportOptions{Fingerprint: fp})
	require.NoError(t, err)
	assert.Equal(t, fp, got.Fingerprint)
	target := t.TempDir()
	_, err = other.Unpack(ctx, got, target, images.UnpackOptions{SkipDevices: true})
	require.NoError(t, err)
	dst, err := os.Readlink(filepath.Join(target, "bin/sh"))
	require.NoError(t, err)
	assert.Equal(t, "/bin/busybox", dst)
}
