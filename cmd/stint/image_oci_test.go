package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stintdev/stint/images/imagetest"
	"github.com/stintdev/stint/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// busyboxLayer is a layer with the host's static busybox as /bin/busybox
// and /bin/sh, plus ents.
func busyboxLayer(t *testing.T, ents ...imagetest.Entry) []imagetest.Entry {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	require.NoError(t, err)
	return append([]imagetest.Entry{
		{Name: "bin/"}, {Name: "bin/busybox", Body: string(bb), Mode: 0o755}, {Name: "bin/sh", Symlink: "busybox"},
	}, ents...)
}

// TestRunOCIFromRegistry: a two-layer image pushed with skopeo to a
// registry on loopback, named in a spec as hub:test/two:v1 (an oci remote),
// runs a job: the upper layer's whiteout deleted a file, its opaque
// directory hid the lower one's entries, its new file is there. The same
// image from the local layout (oci-layout:DIR:v1) is stored once.
func TestRunOCIFromRegistry(t *testing.T) {
	f := newCLI(t)
	reg := imagetest.StartRegistry(t)
	lay := imagetest.NewLayout(t, filepath.Join(f.dir, "layout"))
	lay.Tag("v1", lay.Image("amd64", v1.Config{Env: []string{"PATH=/bin"}}, busyboxLayer(t,
		imagetest.Entry{Name: "etc/"}, imagetest.Entry{Name: "etc/victim", Body: "deleted above"},
		imagetest.Entry{Name: "opt/"}, imagetest.Entry{Name: "opt/dir/"}, imagetest.Entry{Name: "opt/dir/old", Body: "hidden above"},
	), []imagetest.Entry{
		{Name: "etc/"}, {Name: "etc/.wh.victim"},
		{Name: "opt/"}, {Name: "opt/dir/"}, {Name: "opt/dir/.wh..wh..opq"}, {Name: "opt/dir/new", Body: "upper"},
	}))
	reg.Push(t, lay.Dir, "v1", "test/two:v1")

	addRemote(t, f.root, "hub", "http://"+reg.Addr, remote.ProtocolOCI)
	p := f.spec(t, `
[job.oci]
image = "hub:test/two:v1"
run = ["test ! -e /etc/victim", "test ! -e /opt/dir/old", "echo upper-is-$(/bin/busybox cat /opt/dir/new)"]
`)
	got, code := f.run(t, "run", p)
	require.Equal(t, 0, code, got)
	assert.Contains(t, got, "upper-is-upper")
	got, code = f.run(t, "image", "list")
	require.Equal(t, 0, code, got)
	assert.Contains(t, got, "hub:test/two:v1@sha256:")

	got, code = f.run(t, "image", "pull", "oci-layout:"+lay.Dir+":v1", "--alias", "two")
	require.Equal(t, 0, code, got)
	got, code = f.run(t, "--json", "image", "list")
	require.Equal(t, 0, code, got)
	var imgs []map[string]any
	require.NoError(t, json.Unmarshal([]byte(got), &imgs))
	assert.Len(t, imgs, 1, "the same manifest digest is one image: %s", got)
	f.assertClean(t)
}

// TestRunOCIDefaults: a job on an OCI image gets the image config's Env
// under its own (a spec key wins), the WorkingDir as its working directory
// (made when missing) and the User ("app:staff", resolved in the image's
// /etc/passwd and /etc/group); a job that sets workdir and user keeps
// them. The image comes from an oci-layout: written relative to the spec
// file and run from another directory.
func TestRunOCIDefaults(t *testing.T) {
	f := newCLI(t)
	lay := imagetest.NewLayout(t, filepath.Join(f.dir, "layouts", "app"))
	lay.Tag("v1", lay.Image("amd64", v1.Config{
		Env:        []string{"PATH=/bin", "APP=from-image", "OVER=image"},
		WorkingDir: "/srv/app",
		User:       "app:staff",
		Entrypoint: []string{"/bin/sh"},
	}, busyboxLayer(t,
		imagetest.Entry{Name: "etc/"},
		imagetest.Entry{Name: "etc/passwd", Body: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"},
		imagetest.Entry{Name: "etc/group", Body: "root:x:0:\nstaff:x:50:\napp:x:1000:\n"},
	)))
	p := f.spec(t, `
[job.defaults]
image = "oci-layout:layouts/app:v1"
env = { OVER = "spec" }
run = ["echo env=$APP,$OVER path=$PATH cwd=$(pwd) id=$(id -u):$(id -g) home=$HOME"]

[job.own]
image = "oci-layout:layouts/app:v1"
workdir = "/tmp"
user = "root"
run = ["echo own cwd=$(pwd) id=$(id -u):$(id -g)"]
`)
	c := exec.Command(f.bin, "--root", f.root, "run", p)
	c.Dir = t.TempDir() // not the spec's directory
	out, err := c.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "env=from-image,spec path=/bin cwd=/srv/app id=1000:50 home=/home/app")
	assert.Contains(t, string(out), "own cwd=/tmp id=0:0")
	f.assertClean(t)

	// A missing layout is exit 2 at the spec's line.
	p = f.spec(t, `
[job.gone]
image = "oci-layout:layouts/gone:v1"
run = ["true"]
`)
	got, code := f.run(t, "run", p)
	assert.Equal(t, ExitUsage, code, got)
	assert.Contains(t, got, p+":")
	assert.Contains(t, got, `OCI layout "layouts/gone" does not exist`)
}
