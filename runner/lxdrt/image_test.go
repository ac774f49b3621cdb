package lxdrt_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/internal/lxdenv"
	"github.com/stintdev/stint/internal/sysexec"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/lxdrt"
)

// storeRef is the ImageRef the engine gives for an image of the local
// store: its stored files, opened as they are (no export copy).
func storeRef(img *images.Image) *container.ImageRef {
	return lxdrt.FileImage(img.Fingerprint, img.Path(), img.RootfsPath())
}

// TestSplitImage: a split image (metadata tarball + squashfs, straight
// from the store) uploads under stint's fingerprint, once, and runs.
func TestSplitImage(t *testing.T) {
	testenv.RequiresTool(t, "mksquashfs")
	d := lxdenv.StartDaemon(t)
	rt := runtime(t, connect(t, d), lxdrt.Options{})
	ctx := context.Background()
	s, err := images.Open(filepath.Join(t.TempDir(), "images"))
	require.NoError(t, err)
	bb, err := images.BuildBusybox(ctx, s, images.BusyboxOptions{})
	require.NoError(t, err)
	rootfs := t.TempDir()
	_, err = s.Unpack(ctx, bb, rootfs, images.UnpackOptions{SkipDevices: true})
	require.NoError(t, err)
	dir, md := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(md, "metadata.yaml"), fmt.Appendf(nil,
		"architecture: %s\ncreation_date: %d\nproperties:\n  os: busybox\n  description: split %d\n", images.HostArch(), time.Now().Unix(), os.Getpid()), 0o644))
	meta, sq := filepath.Join(dir, "meta.tar.xz"), filepath.Join(dir, "rootfs.squashfs")
	_, err = sysexec.Run(ctx, "tar", "-C", md, "-cJf", meta, "metadata.yaml")
	require.NoError(t, err)
	_, err = sysexec.Run(ctx, "mksquashfs", rootfs, sq, "-noappend", "-quiet", "-comp", "xz")
	require.NoError(t, err)
	img, err := s.Import(ctx, []string{meta, sq}, images.ImportOptions{})
	require.NoError(t, err)
	require.True(t, img.Split)

	uploads := 0
	ref := storeRef(img)
	open := ref.Open
	ref.Open = func(ctx context.Context) (container.ImageFiles, error) { uploads++; return open(ctx) }
	for range 2 {
		name := run(t, rt, container.Config{Root: container.Root{Image: ref}}, lxdrt.CreateOptions{})
		out, st := sh(t, rt, name, "echo split")
		assert.True(t, st.Success())
		assert.Equal(t, "split\n", out)
	}
	assert.Equal(t, 1, uploads, "uploaded once, then reused by fingerprint")
	assert.Contains(t, d.MustLxc(t, "image", "list", "-c", "F", "-f", "csv"), img.Fingerprint[:12])
}
