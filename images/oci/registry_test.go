package oci_test

import (
	"context"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/imagetest"
	"github.com/stintdev/stint/images/oci"
	"github.com/stintdev/stint/images/pull"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A two-layer image pushed to a real registry with skopeo pulls with the
// upper layer's whiteout, opaque directory and hard link honoured, by
// reference and through an OCI remote; the second pull is free.
func TestPullFromRegistry(t *testing.T) {
	ctx := context.Background()
	reg := imagetest.StartRegistry(t)
	l := imagetest.NewLayout(t, "")
	two := l.Image("amd64", testConfig, lowerLayer, upperLayer)
	l.Tag("two", two)
	reg.Push(t, l.Dir, "two", "stint/two:v1")
	s := newStore(t)

	res, err := oci.Pull(ctx, s, reg.Addr+"/stint/two:v1", oci.Options{Platform: "linux/amd64", Aliases: []string{"two"}})
	require.NoError(t, err)
	got, _ := unpacked(t, s, res.Image)
	assert.Equal(t, wantTree, got)
	assert.Equal(t, two.Digest.String(), res.Digest, "skopeo kept the manifest as built")
	assert.Equal(t, "/opt/app", res.Defaults.WorkingDir)
	assert.Equal(t, reg.Addr, res.Image.Source.Remote)

	hub := images.Remote{Name: "hub", URL: "http://" + reg.Addr + "/stint", Protocol: images.ProtocolOCI}
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
	reg := imagetest.StartRegistry(t)
	l := imagetest.NewLayout(t, "")
	l.Tag("arm", l.Multi(l.Image("arm64", v1.Config{}, []ent{{Name: "arch", Body: "arm64"}})))
	bad := l.Image("amd64", v1.Config{}, lowerLayer, badLayer)
	l.Tag("bad", bad)
	reg.Push(t, l.Dir, "arm", "stint/arm:v1")
	reg.Push(t, l.Dir, "bad", "stint/bad:v1")
	m := readManifest(t, l, bad)
	corrupt(t, reg.BlobFile(m.Layers[1].Digest))
	s := newStore(t)

	_, err := oci.Pull(ctx, s, reg.Addr+"/stint/arm:v1", oci.Options{Platform: "linux/amd64"})
	assert.ErrorIs(t, err, images.ErrPlatform)
	assert.ErrorContains(t, err, "linux/arm64")
	_, err = oci.Pull(ctx, s, reg.Addr+"/stint/bad:v1", oci.Options{Platform: "linux/amd64"})
	require.Error(t, err)
	assert.ErrorIs(t, err, images.ErrVerify)
	assert.ErrorContains(t, err, m.Layers[1].Digest.String())
	assert.Empty(t, storeNames(t, s))
	_, err = oci.Pull(ctx, s, strings.Replace(reg.Addr, "127.0.0.1", "localhost", 1)+"/stint/bad:v1", oci.Options{Platform: "linux/amd64"})
	assert.ErrorIs(t, err, images.ErrVerify, "localhost is loopback too")
}

// auto-update through the one door: after the tag is pushed again with
// another image, pull.Check says newer, and a pull with MoveAliases moves
// the alias and keeps the old image.
func TestCheckRegistryTagMoved(t *testing.T) {
	ctx := context.Background()
	reg := imagetest.StartRegistry(t)
	l := imagetest.NewLayout(t, "")
	l.Tag("v1", l.Image("amd64", v1.Config{}, []ent{{Name: "v", Body: "1"}}))
	l.Tag("v2", l.Image("amd64", v1.Config{}, []ent{{Name: "v", Body: "2"}}))
	reg.Push(t, l.Dir, "v1", "stint/app:stable")
	hub := images.Remote{Name: "hub", URL: "http://" + reg.Addr + "/stint", Protocol: images.ProtocolOCI}
	s := newStore(t)
	old, err := pull.Pull(ctx, s, hub, "app:stable", pull.Options{Arch: "x86_64", Aliases: []string{"app"}})
	require.NoError(t, err)
	newer, err := pull.Check(ctx, hub, old.Image, pull.Options{Arch: "x86_64"})
	require.NoError(t, err)
	assert.False(t, newer)

	reg.Push(t, l.Dir, "v2", "stint/app:stable")
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
