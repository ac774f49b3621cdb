package oci_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/oci"
	"github.com/stintdev/stint/images/pull"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// registry is a CNCF distribution server (Debian's docker-registry) the
// test starts on 127.0.0.1, with its storage in a temporary directory.
type registry struct {
	addr    string // 127.0.0.1:PORT
	storage string
}

func startRegistry(t *testing.T) *registry {
	t.Helper()
	testenv.RequiresTool(t, "docker-registry", "skopeo")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	r := &registry{addr: addr, storage: filepath.Join(dir, "storage")}
	conf := filepath.Join(dir, "config.yml")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
`, r.storage, addr), 0o644))
	cmd := exec.Command("docker-registry", "serve", conf)
	var out testenv.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("docker-registry output:\n%s", out.String())
		}
	})
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		if i == 100 {
			testenv.Unavailable(t, fmt.Sprintf("docker-registry did not answer on %s: %v\n%s", addr, err, out.String()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// push copies the layout's tag into the registry as repo:tag with skopeo.
func (r *registry) push(t *testing.T, l *layout, tag, repo string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "skopeo", "copy", "--all", "--dest-tls-verify=false",
		"oci:"+l.dir+":"+tag, "docker://"+r.addr+"/"+repo)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "skopeo copy: %s", out)
}

// blob is the registry's file of a blob.
func (r *registry) blob(h v1.Hash) string {
	return filepath.Join(r.storage, "docker/registry/v2/blobs", h.Algorithm, h.Hex[:2], h.Hex, "data")
}

// A two-layer image pushed to a real registry with skopeo pulls with the
// upper layer's whiteout, opaque directory and hard link honoured, by
// reference and through an OCI remote; the second pull is free.
func TestPullFromRegistry(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t)
	l := newLayout(t)
	two := l.image("amd64", testConfig, lowerLayer, upperLayer)
	l.tag("two", two)
	reg.push(t, l, "two", "stint/two:v1")
	s := newStore(t)

	res, err := oci.Pull(ctx, s, reg.addr+"/stint/two:v1", oci.Options{Platform: "linux/amd64", Aliases: []string{"two"}})
	require.NoError(t, err)
	got, _ := unpacked(t, s, res.Image)
	assert.Equal(t, wantTree, got)
	assert.Equal(t, two.Digest.String(), res.Digest, "skopeo kept the manifest as built")
	assert.Equal(t, "/opt/app", res.Defaults.WorkingDir)
	assert.Equal(t, reg.addr, res.Image.Source.Remote)

	hub := images.Remote{Name: "hub", URL: "http://" + reg.addr + "/stint", Protocol: images.ProtocolOCI}
	again, err := oci.PullRemote(ctx, s, hub, "two:v1", oci.Options{Platform: "linux/amd64", Aliases: []string{"hub/two"}})
	require.NoError(t, err)
	assert.True(t, again.Cached)
	assert.Equal(t, res.Image.Fingerprint, again.Image.Fingerprint)
	assert.Equal(t, "hub", again.Image.Source.Remote)
	assert.Equal(t, "two:v1", again.Image.Source.Alias)

	_, err = oci.PullRemote(ctx, s, hub, "nosuch:v1", oci.Options{Platform: "linux/amd64"})
	assert.ErrorIs(t, err, images.ErrNotFound)
}

// What the registry serves is checked: an image only for another
// platform is ErrPlatform, a blob altered in the registry's storage is
// ErrVerify naming the layer; nothing is stored.
func TestPullFromRegistryRefused(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t)
	l := newLayout(t)
	l.tag("arm", l.multi(l.image("arm64", v1.Config{}, []ent{{name: "arch", body: "arm64"}})))
	bad := l.image("amd64", v1.Config{}, lowerLayer, badLayer)
	l.tag("bad", bad)
	reg.push(t, l, "arm", "stint/arm:v1")
	reg.push(t, l, "bad", "stint/bad:v1")
	m := readManifest(t, l, bad)
	corrupt(t, reg.blob(m.Layers[1].Digest))
	s := newStore(t)

	_, err := oci.Pull(ctx, s, reg.addr+"/stint/arm:v1", oci.Options{Platform: "linux/amd64"})
	assert.ErrorIs(t, err, images.ErrPlatform)
	assert.ErrorContains(t, err, "linux/arm64")
	_, err = oci.Pull(ctx, s, reg.addr+"/stint/bad:v1", oci.Options{Platform: "linux/amd64"})
	require.Error(t, err)
	assert.ErrorIs(t, err, images.ErrVerify)
	assert.ErrorContains(t, err, m.Layers[1].Digest.String())
	assert.Empty(t, storeNames(t, s))
	_, err = oci.Pull(ctx, s, strings.Replace(reg.addr, "127.0.0.1", "localhost", 1)+"/stint/bad:v1", oci.Options{Platform: "linux/amd64"})
	assert.ErrorIs(t, err, images.ErrVerify, "localhost is loopback too")
}

// auto-update through the one door: after the tag is pushed again with
// another image, pull.Check says newer, and a pull with MoveAliases moves
// the alias and keeps the old image.
func TestCheckRegistryTagMoved(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t)
	l := newLayout(t)
	l.tag("v1", l.image("amd64", v1.Config{}, []ent{{name: "v", body: "1"}}))
	l.tag("v2", l.image("amd64", v1.Config{}, []ent{{name: "v", body: "2"}}))
	reg.push(t, l, "v1", "stint/app:stable")
	hub := images.Remote{Name: "hub", URL: "http://" + reg.addr + "/stint", Protocol: images.ProtocolOCI}
	s := newStore(t)
	old, err := pull.Pull(ctx, s, hub, "app:stable", pull.Options{Arch: "x86_64", Aliases: []string{"app"}})
	require.NoError(t, err)
	newer, err := pull.Check(ctx, hub, old.Image, pull.Options{Arch: "x86_64"})
	require.NoError(t, err)
	assert.False(t, newer)

	reg.push(t, l, "v2", "stint/app:stable")
	newer, err = pull.Check(ctx, hub, old.Image, pull.Options{Arch: "x86_64"})
	require.NoError(t, err)
	assert.True(t, newer, "the tag names another manifest now")
	res, err := pull.Pull(ctx, s, hub, "app:stable", pull.Options{Arch: "x86_64", Aliases: []string{"app"}, MoveAliases: true})
	require.NoError(t, err)
	got, _ := unpacked(t, s, res.Image)
	assert.Equal(t, []string{"v = 2"}, got)
	kept, err := s.Resolve(old.Image.Fingerprint)
	require.NoError(t, err)
	assert.Empty(t, kept.Aliases)
}
