package lxdrt_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	lxd "github.com/canonical/lxd/client"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/internal/lxdenv"
	"github.com/stintdev/stint/remote"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/lxdrt"
)

// imageDir holds one busybox image for the whole test binary.
var (
	imageOnce sync.Once
	imageRef  *container.ImageRef
	imageErr  error
	imageDir  string
)

func TestMain(m *testing.M) {
	if sock := os.Getenv("STINT_LXDRT_CRASH_SOCKET"); sock != "" {
		os.Exit(crashHelper(sock, os.Getenv("STINT_LXDRT_CRASH_OWNER"), os.Getenv("STINT_LXDRT_CRASH_IMAGE")))
	}
	code := m.Run()
	if imageDir != "" {
		os.RemoveAll(imageDir)
	}
	os.Exit(code)
}

// busybox returns a reference to a busybox image built from the host's
// busybox, in LXD's format (built once per test binary).
func busybox(t testing.TB) *container.ImageRef {
	t.Helper()
	imageOnce.Do(func() {
		ctx := context.Background()
		if imageDir, imageErr = os.MkdirTemp("", "stint-lxdrt-img-"); imageErr != nil {
			return
		}
		var s *images.Store
		if s, imageErr = images.Open(filepath.Join(imageDir, "images")); imageErr != nil {
			return
		}
		var img *images.Image
		if img, imageErr = images.BuildBusybox(ctx, s, images.BusyboxOptions{}); imageErr != nil {
			return
		}
		var files []string
		if imageErr = os.Mkdir(filepath.Join(imageDir, "export"), 0o755); imageErr != nil {
			return
		}
		if files, imageErr = s.Export(ctx, img, filepath.Join(imageDir, "export"), nil); imageErr != nil {
			return
		}
		imageRef = &container.ImageRef{Fingerprint: img.Fingerprint, Open: func(context.Context) (container.ImageFiles, error) {
			var f container.ImageFiles
			m, err := os.Open(files[0])
			if err != nil {
				return f, err
			}
			f.Meta = m
			if len(files) > 1 {
				if f.Rootfs, err = os.Open(files[1]); err != nil {
					m.Close()
					return f, err
				}
			}
			return f, nil
		}}
	})
	require.NoError(t, imageErr, "build the busybox image")
	return imageRef
}

// connect adds the daemon's unix socket as a remote and connects to it.
func connect(t testing.TB, d *lxdenv.Daemon) lxd.InstanceServer {
	t.Helper()
	root, err := os.MkdirTemp("", "stint-lxdrt-root-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(root) })
	s, err := remote.Open(root)
	require.NoError(t, err)
	r, err := s.Add(context.Background(), "t", "unix://"+d.Socket, remote.AddOptions{})
	require.NoError(t, err)
	c, err := s.Connect(context.Background(), r)
	require.NoError(t, err)
	t.Cleanup(c.Disconnect)
	return c
}

// runtime returns a Runtime on c with an owner unique to the test.
func runtime(t *testing.T, c lxd.InstanceServer, opts lxdrt.Options) *lxdrt.Runtime {
	t.Helper()
	if opts.Owner == "" {
		opts.Owner = fmt.Sprintf("test:%s:%d", t.Name(), os.Getpid())
	}
	if opts.Remote == "" {
		opts.Remote = "t"
	}
	rt, err := lxdrt.New(c, opts)
	require.NoError(t, err)
	return rt
}

// connectAgain is a second client of the same daemon.
func connectAgain(t *testing.T, d *lxdenv.Daemon) lxd.InstanceServer { return connect(t, d) }
