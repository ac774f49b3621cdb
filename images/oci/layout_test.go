package oci_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/imagetest"
	"github.com/stintdev/stint/images/oci"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A two-layer image from a local OCI layout: the upper layer's whiteout,
// opaque directory and hard link are honoured, the config's defaults and
// the manifest digest are kept, and a second pull downloads nothing.
func TestPullLayout(t *testing.T) {
	ctx := context.Background()
	l := imagetest.NewLayout(t, "")
	l.Tag("two", l.Image("amd64", testConfig, lowerLayer, upperLayer))
	s := newStore(t)

	res, err := oci.Pull(ctx, s, oci.LayoutPrefix+l.Dir+":two", oci.Options{Platform: "linux/amd64", Aliases: []string{"app/two"}})
	require.NoError(t, err)
	assert.False(t, res.Cached)
	got, dir := unpacked(t, s, res.Image)
	assert.Equal(t, wantTree, got)
	var a, b syscall.Stat_t
	require.NoError(t, syscall.Stat(filepath.Join(dir, "bin/tool"), &a))
	require.NoError(t, syscall.Stat(filepath.Join(dir, "bin/tool-link"), &b))
	assert.Equal(t, a.Ino, b.Ino, "the hard link is one file")

	assert.Equal(t, oci.Defaults{Env: testConfig.Env, WorkingDir: "/opt/app", User: "1000:1000", Entrypoint: []string{"/bin/tool"}, Cmd: []string{"--serve"}}, res.Defaults)
	assert.Equal(t, res.Digest, res.Image.Properties[oci.PropDigest])
	assert.Equal(t, "x86_64", res.Image.Architecture)
	assert.Equal(t, []string{"app/two"}, res.Image.Aliases)
	require.NotNil(t, res.Image.Source)
	assert.Equal(t, images.ProtocolOCI, res.Image.Source.Protocol)
	assert.Equal(t, res.Digest, res.Image.Source.Digest)
	stored, err := s.Resolve("app/two")
	require.NoError(t, err)
	d, err := oci.DefaultsOf(stored)
	require.NoError(t, err)
	assert.Equal(t, res.Defaults, d, "the defaults are read back from the store")

	again, err := oci.Pull(ctx, s, oci.LayoutPrefix+l.Dir+":two", oci.Options{Platform: "linux/amd64", Aliases: []string{"again"}})
	require.NoError(t, err)
	assert.True(t, again.Cached, "a second pull of the same digest is free")
	assert.Equal(t, res.Image.Fingerprint, again.Image.Fingerprint)
	assert.Equal(t, []string{"again", "app/two"}, again.Image.Aliases)

	// The same digest pulled into another store gives the same fingerprint.
	other, err := oci.Pull(ctx, newStore(t), oci.LayoutPrefix+l.Dir+":two", oci.Options{Platform: "linux/amd64"})
	require.NoError(t, err)
	assert.Equal(t, res.Image.Fingerprint, other.Image.Fingerprint)
}

// An index is resolved to the platform's manifest; an image only for
// another platform is ErrPlatform, whether behind an index or not.
func TestPullLayoutPlatforms(t *testing.T) {
	ctx := context.Background()
	l := imagetest.NewLayout(t, "")
	amd := l.Image("amd64", v1.Config{}, []ent{{Name: "arch", Body: "amd64"}})
	arm := l.Image("arm64", v1.Config{}, []ent{{Name: "arch", Body: "arm64"}})
	l.Tag("multi", l.Multi(arm, amd))
	l.Tag("armindex", l.Multi(arm))
	l.Tag("armonly", arm)
	s := newStore(t)

	res, err := oci.Pull(ctx, s, oci.LayoutPrefix+l.Dir+":multi", oci.Options{Platform: "linux/amd64"})
	require.NoError(t, err)
	got, _ := unpacked(t, s, res.Image)
	assert.Equal(t, []string{"arch = amd64"}, got)
	assert.Equal(t, amd.Digest.String(), res.Digest)
	res, err = oci.Pull(ctx, s, oci.LayoutPrefix+l.Dir+":multi", oci.Options{Platform: "linux/arm64"})
	require.NoError(t, err)
	assert.Equal(t, "aarch64", res.Image.Architecture)

	for _, tag := range []string{"armindex", "armonly"} {
		_, err := oci.Pull(ctx, newStore(t), oci.LayoutPrefix+l.Dir+":"+tag, oci.Options{Platform: "linux/amd64"})
		assert.ErrorIs(t, err, images.ErrPlatform, tag)
		assert.ErrorContains(t, err, "linux/arm64", tag)
	}
	_, err = oci.Pull(ctx, s, oci.LayoutPrefix+l.Dir+":nosuch", oci.Options{})
	assert.ErrorIs(t, err, images.ErrNotFound)
}

// Tampered blobs and hostile layers are refused, naming the layer or the
// entry; nothing is stored or left behind, and the next pull works.
func TestPullLayoutRefused(t *testing.T) {
	tests := []struct {
		name    string
		build   func(l *imagetest.Layout) v1.Descriptor
		wantErr error
		wantMsg string
	}{
		{"tampered layer", func(l *imagetest.Layout) v1.Descriptor {
			d := l.Image("amd64", v1.Config{}, lowerLayer, badLayer)
			m := readManifest(t, l, d)
			corrupt(t, l.BlobPath(m.Layers[1].Digest))
			return d
		}, images.ErrVerify, "digest mismatch"},
		{"truncated layer", func(l *imagetest.Layout) v1.Descriptor {
			d := l.Image("amd64", v1.Config{}, badLayer)
			m := readManifest(t, l, d)
			p := l.BlobPath(m.Layers[0].Digest)
			require.NoError(t, os.Truncate(p, m.Layers[0].Size-5))
			return d
		}, images.ErrVerify, "size mismatch"},
		{"tampered config", func(l *imagetest.Layout) v1.Descriptor {
			d := l.Image("amd64", v1.Config{}, lowerLayer)
			corrupt(t, l.BlobPath(readManifest(t, l, d).Config.Digest))
			return d
		}, images.ErrVerify, "config sha256:"},
		{"tampered manifest", func(l *imagetest.Layout) v1.Descriptor {
			d := l.Image("amd64", v1.Config{}, lowerLayer)
			corrupt(t, l.BlobPath(d.Digest))
			return d
		}, images.ErrVerify, "manifest sha256:"},
		{"dot-dot", func(l *imagetest.Layout) v1.Descriptor {
			return l.Image("amd64", v1.Config{}, lowerLayer, []ent{{Name: "../escape", Body: "x"}})
		}, images.ErrUnsafeEntry, `"../escape"`},
		{"absolute", func(l *imagetest.Layout) v1.Descriptor {
			return l.Image("amd64", v1.Config{}, []ent{{Name: "/etc/escape", Body: "x"}})
		}, images.ErrUnsafeEntry, `"/etc/escape": absolute path`},
		{"whiteout of ..", func(l *imagetest.Layout) v1.Descriptor {
			return l.Image("amd64", v1.Config{}, lowerLayer, []ent{{Name: "etc/.wh..."}})
		}, images.ErrUnsafeEntry, `whiteout of ".."`},
		{"whiteout through a symlink", func(l *imagetest.Layout) v1.Descriptor {
			return l.Image("amd64", v1.Config{}, []ent{{Name: "out", Symlink: "/"}}, []ent{{Name: "out/tmp/.wh.x"}})
		}, images.ErrUnsafeEntry, "symlink"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			l := imagetest.NewLayout(t, "")
			l.Tag("bad", tt.build(l))
			l.Tag("good", l.Image("amd64", testConfig, lowerLayer, upperLayer))
			s := newStore(t)
			_, err := oci.Pull(ctx, s, oci.LayoutPrefix+l.Dir+":bad", oci.Options{Platform: "linux/amd64"})
			require.Error(t, err)
			t.Log(err)
			assert.ErrorIs(t, err, tt.wantErr)
			assert.ErrorContains(t, err, tt.wantMsg)
			assert.Empty(t, storeNames(t, s), "nothing stored, nothing left")
			res, err := oci.Pull(ctx, s, oci.LayoutPrefix+l.Dir+":good", oci.Options{Platform: "linux/amd64"})
			require.NoError(t, err, "the next pull works")
			got, _ := unpacked(t, s, res.Image)
			assert.Equal(t, wantTree, got)
		})
	}
}

func TestParseReference(t *testing.T) {
	for _, tt := range []struct{ ref, want string }{
		{"127.0.0.1:5000/x:tag", "127.0.0.1:5000/x:tag"},
		{"127.0.0.1:5000/lib/x", "127.0.0.1:5000/lib/x:latest"},
		{"registry.example/library/alpine:3.20", "registry.example/library/alpine:3.20"},
		{"localhost:5000/x@sha256:" + sha64, "localhost:5000/x@sha256:" + sha64},
		{"oci-layout:/srv/layout:v1", "oci-layout:/srv/layout:v1"},
		{"oci-layout:/srv/lay:out/dir", "oci-layout:/srv/lay:out/dir"},
		{"alpine:3.20", ""}, // no default registry
		{"library/alpine", ""},
		{"127.0.0.1:5000/X:tag", ""},
		{"oci-layout:", ""},
	} {
		r, err := oci.ParseReference(tt.ref, false)
		if tt.want == "" {
			assert.ErrorIs(t, err, images.ErrInvalidRemote, tt.ref)
			continue
		}
		if assert.NoError(t, err, tt.ref) {
			assert.Equal(t, tt.want, r.String())
		}
	}
	r, err := oci.RemoteReference(images.Remote{Name: "hub", URL: "https://registry.example/library", Protocol: images.ProtocolOCI}, "alpine:3.20")
	require.NoError(t, err)
	assert.Equal(t, "registry.example/library/alpine:3.20", r.String())
	_, err = oci.RemoteReference(images.Remote{Name: "hub", URL: "http://registry.example", Protocol: images.ProtocolOCI}, "alpine")
	assert.ErrorIs(t, err, images.ErrInvalidRemote, "plain http off loopback")
	_, err = oci.RemoteReference(images.Remote{Name: "hub", URL: "https://registry.example", Protocol: images.ProtocolOCI}, "../x")
	assert.ErrorIs(t, err, images.ErrInvalidRemote)
}

// badLayer is in no good image: tampering with its blob touches only the bad one.
var badLayer = []ent{{Name: "bad", Body: "a layer of the bad image only"}}

const sha64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func readManifest(t *testing.T, l *imagetest.Layout, d v1.Descriptor) *v1.Manifest {
	f, err := os.Open(l.BlobPath(d.Digest))
	require.NoError(t, err)
	defer f.Close()
	m, err := v1.ParseManifest(f)
	require.NoError(t, err)
	return m
}

// corrupt flips a byte in the middle of the file, keeping its size.
func corrupt(t *testing.T, p string) {
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	data[len(data)/2] ^= 0xff
	require.NoError(t, os.WriteFile(p, data, 0o644))
}

// A registry that accepts connections and never answers is a timeout, not
// a hang.
func TestPullHangingRegistry(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	_, err = oci.Pull(context.Background(), newStore(t), ln.Addr().String()+"/x:v1", oci.Options{IdleTimeout: 300 * time.Millisecond})
	require.Error(t, err)
	t.Log(err)
	assert.ErrorIs(t, err, images.ErrTimeout)
	assert.Less(t, time.Since(start), 10*time.Second)
}

// auto-update: Check sees that the tag now names another manifest; the
// pull with MoveAliases moves the alias and keeps the old image.
func TestCheckLayout(t *testing.T) {
	ctx := context.Background()
	l := imagetest.NewLayout(t, "")
	l.Tag("app", l.Image("amd64", v1.Config{}, []ent{{Name: "v", Body: "1"}}))
	s := newStore(t)
	ref := oci.LayoutPrefix + l.Dir + ":app"
	old, err := oci.Pull(ctx, s, ref, oci.Options{Platform: "linux/amd64", Aliases: []string{"app"}})
	require.NoError(t, err)
	r, err := oci.ParseReference(ref, false)
	require.NoError(t, err)
	newer, _, err := oci.Check(ctx, old.Image, r, oci.Options{Platform: "linux/amd64"})
	require.NoError(t, err)
	assert.False(t, newer)

	l.Tag("app", l.Image("amd64", v1.Config{}, []ent{{Name: "v", Body: "2"}}))
	newer, digest, err := oci.Check(ctx, old.Image, r, oci.Options{Platform: "linux/amd64"})
	require.NoError(t, err)
	assert.True(t, newer)
	res, err := oci.Pull(ctx, s, ref, oci.Options{Platform: "linux/amd64", Aliases: []string{"app"}, MoveAliases: true})
	require.NoError(t, err)
	assert.Equal(t, digest, res.Digest)
	got, err := s.Resolve("app")
	require.NoError(t, err)
	assert.Equal(t, res.Image.Fingerprint, got.Fingerprint)
	kept, err := s.Resolve(old.Image.Fingerprint)
	require.NoError(t, err)
	assert.Empty(t, kept.Aliases, "the old image is kept, without the alias")
}

// An imported image carrying another image's oci.digest property is not
// taken for a pull of that digest: the store's source record decides.
func TestCachedOnlyByPull(t *testing.T) {
	ctx := context.Background()
	l := imagetest.NewLayout(t, "")
	l.Tag("two", l.Image("amd64", testConfig, lowerLayer, upperLayer))
	s := newStore(t)
	res, err := oci.Pull(ctx, s, oci.LayoutPrefix+l.Dir+":two", oci.Options{Platform: "linux/amd64"})
	require.NoError(t, err)
	files, err := s.Export(ctx, res.Image, t.TempDir(), nil)
	require.NoError(t, err)

	other := newStore(t)
	imported, err := other.Import(ctx, files, images.ImportOptions{})
	require.NoError(t, err)
	assert.Equal(t, res.Digest, imported.Properties[oci.PropDigest])
	again, err := oci.Pull(ctx, other, oci.LayoutPrefix+l.Dir+":two", oci.Options{Platform: "linux/amd64"})
	require.NoError(t, err)
	assert.False(t, again.Cached, "downloaded: the import was no pull")
	assert.Equal(t, imported.Fingerprint, again.Image.Fingerprint, "and it is the same image, bit for bit")
	require.NotNil(t, again.Image.Source)
}
