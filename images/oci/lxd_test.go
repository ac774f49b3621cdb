package oci_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/imagetest"
	"github.com/stintdev/stint/images/internal/privlxd"
	"github.com/stintdev/stint/images/oci"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dirEnts lists the tree at dir as layer entries (directories, files with
// their modes, symlinks), in walk order.
func dirEnts(t *testing.T, dir string) []ent {
	t.Helper()
	var out []ent
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		require.NoError(t, err)
		e := ent{Name: rel, Mode: int64(fi.Mode().Perm() | fi.Mode()&fs.ModeSetuid)}
		switch {
		case fi.IsDir():
			e.Name += "/"
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Symlink, err = os.Readlink(p)
			require.NoError(t, err)
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			e.Body = string(data)
		default:
			return nil // devices and fifos: not in this image
		}
		out = append(out, e)
		return nil
	}))
	return out
}

// An OCI image pulled from a registry is a bootable LXD image: a private
// LXD imports it with stint's fingerprint and boots it (busybox init), and
// inside the container the upper layer's deletions are honoured.
func TestOCIImageBootsInLXD(t *testing.T) {
	testenv.RequiresRoot(t)
	testenv.RequiresTool(t, "lxd", "lxc", "busybox", "docker-registry", "skopeo")
	ctx := context.Background()
	reg := imagetest.StartRegistry(t)

	bbStore := newStore(t)
	bb, err := images.BuildBusybox(ctx, bbStore, images.BusyboxOptions{})
	require.NoError(t, err)
	base := t.TempDir()
	_, err = bbStore.Unpack(ctx, bb, base, images.UnpackOptions{SkipDevices: true})
	require.NoError(t, err)
	lower := append(dirEnts(t, base), lowerLayer[2], ent{Name: "opt/"}, ent{Name: "opt/app/"}, ent{Name: "opt/app/old", Body: "old"})
	l := imagetest.NewLayout(t, "")
	upper := []ent{upperLayer[0], upperLayer[1], upperLayer[2], upperLayer[3], {Name: "bin/bb-link", Hardlink: "bin/busybox"}}
	l.Tag("boot", l.Image("amd64", testConfig, lower, upper))
	reg.Push(t, l.Dir, "boot", "stint/boot:v1")

	s := newStore(t)
	res, err := oci.Pull(ctx, s, reg.Addr+"/stint/boot:v1", oci.Options{Platform: "linux/amd64"})
	require.NoError(t, err)
	files, err := s.Export(ctx, res.Image, t.TempDir(), nil)
	require.NoError(t, err)

	lxd := privlxd.Start(t, "")
	lxd.Lxc(t, append(append([]string{"image", "import"}, files...), "--alias", "boot")...)
	var alias struct {
		Target string `json:"target"`
	}
	require.NoError(t, json.Unmarshal([]byte(lxd.Lxc(t, "query", "/1.0/images/aliases/boot")), &alias))
	assert.Equal(t, res.Image.Fingerprint, alias.Target, "LXD computes stint's fingerprint")

	name := "stint-oci-test"
	lxd.Launch(t, "boot", name)
	var out string
	for i := 0; i < 30; i++ {
		o, err := lxd.Run(ctx, "lxc", "exec", name, "--", "/bin/sh", "-c", "test ! -e /etc/gone && ls /opt/app && cat /etc/hostname && test /bin/bb-link -ef /bin/busybox")
		if err == nil {
			out = o
			break
		}
		time.Sleep(time.Second)
	}
	assert.Equal(t, "new\n"+name+"\n", out, "the whiteout and the opaque directory hold in the running container")
}
