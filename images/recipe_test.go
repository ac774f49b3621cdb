package images

import (
	"archive/tar"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/spec"
)

// recipeDef writes a recipe's hooks and files into dir and returns its table.
func recipeDef(t *testing.T, dir string) spec.Image {
	t.Helper()
	return spec.Image{
		Name:       "ci",
		From:       "base",
		Packages:   []string{"make", "gcc"},
		Hooks:      []string{writeFile(t, dir, "01.sh", []byte("echo one\n")), writeFile(t, dir, "02.sh", []byte("echo two\n"))},
		Files:      map[string]string{"/etc/motd": writeFile(t, dir, "motd", []byte("hi\n")), "/usr/local/bin/x": writeFile(t, dir, "x", []byte("#!/bin/sh\n"))},
		Properties: map[string]string{"os": "debian", "description": "CI"},
	}
}

func TestRecipeKey(t *testing.T) {
	base := &Image{Fingerprint: "aaaa"}
	key := func(t *testing.T, def spec.Image, base *Image) string {
		t.Helper()
		r, err := LoadRecipe(def, base)
		require.NoError(t, err)
		k, err := r.Key()
		require.NoError(t, err)
		require.Len(t, k, 64)
		return k
	}
	tests := []struct {
		name    string
		change  func(t *testing.T, dir string, def *spec.Image, base **Image)
		rebuild bool
	}{
		{"unchanged", func(*testing.T, string, *spec.Image, **Image) {}, false},
		{"packages reordered", func(_ *testing.T, _ string, d *spec.Image, _ **Image) { d.Packages = []string{"gcc", "make"} }, false},
		{"hook moved, same contents", func(t *testing.T, dir string, d *spec.Image, _ **Image) {
			d.Hooks[0] = writeFile(t, t.TempDir(), "other-name.sh", []byte("echo one\n"))
		}, false},
		{"image renamed", func(_ *testing.T, _ string, d *spec.Image, _ **Image) { d.Name = "other" }, false},
		{"hook contents", func(t *testing.T, dir string, _ *spec.Image, _ **Image) {
			writeFile(t, dir, "02.sh", []byte("echo TWO\n"))
		}, true},
		{"hooks reordered", func(_ *testing.T, _ string, d *spec.Image, _ **Image) {
			d.Hooks[0], d.Hooks[1] = d.Hooks[1], d.Hooks[0]
		}, true},
		{"file contents", func(t *testing.T, dir string, _ *spec.Image, _ **Image) { writeFile(t, dir, "motd", []byte("bye\n")) }, true},
		{"file mode", func(t *testing.T, dir string, _ *spec.Image, _ **Image) {
			require.NoError(t, os.Chmod(filepath.Join(dir, "x"), 0o755))
		}, true},
		{"file target", func(_ *testing.T, _ string, d *spec.Image, _ **Image) {
			d.Files["/etc/issue"] = d.Files["/etc/motd"]
			delete(d.Files, "/etc/motd")
		}, true},
		{"package added", func(_ *testing.T, _ string, d *spec.Image, _ **Image) { d.Packages = append(d.Packages, "curl") }, true},
		{"property", func(_ *testing.T, _ string, d *spec.Image, _ **Image) {
			d.Properties = map[string]string{"os": "debian"}
		}, true},
		{"base image", func(_ *testing.T, _ string, _ *spec.Image, b **Image) { *b = &Image{Fingerprint: "bbbb"} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			def := recipeDef(t, dir)
			before := key(t, def, base)
			def = recipeDef(t, dir) // fresh maps and slices: tt.change edits them
			b := base
			tt.change(t, dir, &def, &b)
			after := key(t, def, b)
			if tt.rebuild {
				assert.NotEqual(t, before, after)
			} else {
				assert.Equal(t, before, after)
			}
		})
	}
}

func TestLoadRecipeErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		def  func(spec.Image) spec.Image
		want string
	}{
		{"missing hook", func(d spec.Image) spec.Image { d.Hooks = []string{filepath.Join(dir, "nope.sh")}; return d }, "image ci: hook " + filepath.Join(dir, "nope.sh") + ": stat "},
		{"directory as file", func(d spec.Image) spec.Image { d.Files = map[string]string{"/etc/x": dir}; return d }, "is not a regular file"},
		{"relative target", func(d spec.Image) spec.Image { d.Files = map[string]string{"etc/x": d.Hooks[0]}; return d }, "image ci: file etc/x: the container path must be absolute and clean"},
		{"dotdot target", func(d spec.Image) spec.Image { d.Files = map[string]string{"/etc/../x": d.Hooks[0]}; return d }, "must be absolute and clean"},
		{"not a recipe", func(d spec.Image) spec.Image { d.From = ""; return d }, "image ci: not a recipe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadRecipe(tt.def(recipeDef(t, dir)), &Image{Fingerprint: "aaaa"})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestPublish packs a directory over a base image: the base's templates and
// architecture, merged properties, the build key, owners mapped.
func TestPublish(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	base, err := s.Import(ctx, []string{writeFile(t, t.TempDir(), "i", mkTar(t, unifiedEnts(testMeta)))}, ImportOptions{})
	require.NoError(t, err)

	rootfs := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(rootfs, "etc", "motd"), []byte("hi\n"), 0o640))
	me, mygid := os.Getuid(), os.Getgid()
	owner := func(uid, gid int) (int, int, error) {
		if uid != me || gid != mygid {
			return 0, 0, fmt.Errorf("owner %d:%d outside the map", uid, gid)
		}
		return 0, 0, nil
	}
	img, err := Publish(ctx, s, rootfs, base, PublishOptions{
		Name: "ci", Key: "k1", Properties: map[string]string{"release": "2.0"}, Aliases: []string{"ci"}, Owner: owner,
	})
	require.NoError(t, err)
	assert.Equal(t, "x86_64", img.Architecture)
	assert.Equal(t, []string{"ci"}, img.Aliases)
	assert.Equal(t, "testos", img.Properties["os"], "base property kept")
	assert.Equal(t, "2.0", img.Properties["release"], "recipe property wins")
	assert.Equal(t, "k1", img.Properties[BuildProperty])
	assert.Contains(t, img.Description(), "recipe on a test image")
	assert.Contains(t, img.Templates, "/etc/hostname")

	found, err := s.FindProperty(BuildProperty, "k1")
	require.NoError(t, err)
	require.Len(t, found, 1)
	assert.Equal(t, img.Fingerprint, found[0].Fingerprint)

	hdrs := tarHeaders(t, img.Path())
	require.Contains(t, hdrs, "templates/hostname.tpl")
	require.Contains(t, hdrs, "rootfs/etc/motd")
	motd := hdrs["rootfs/etc/motd"]
	assert.Equal(t, 0, motd.Uid)
	assert.Equal(t, 0, motd.Gid)
	assert.Equal(t, int64(0o640), motd.Mode&0o7777)

	// An owner outside the map fails the publish, naming the entry, and
	// leaves no temporary file behind.
	_, err = Publish(ctx, s, rootfs, base, PublishOptions{Name: "bad", Owner: func(int, int) (int, int, error) {
		return 0, 0, errors.New("outside the map")
	}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rootfs/etc")
	assertNoTemp(t, s)
}

func tarHeaders(t *testing.T, file string) map[string]*tar.Header {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	r, _, err := decompress(f)
	require.NoError(t, err)
	defer r.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out[filepath.Clean(h.Name)] = h
	}
}

func TestUnshiftCaps(t *testing.T) {
	v3 := make([]byte, 24)
	binary.LittleEndian.PutUint32(v3[0:], 0x03000001) // revision 3, effective
	binary.LittleEndian.PutUint32(v3[4:], 1<<13)      // cap_net_raw
	binary.LittleEndian.PutUint32(v3[20:], 100000)    // the namespace's root
	hdr := &tar.Header{PAXRecords: map[string]string{"SCHILY.xattr.security.capability": string(v3)}}
	unshiftCaps(hdr)
	got := []byte(hdr.PAXRecords["SCHILY.xattr.security.capability"])
	require.Len(t, got, 20)
	assert.Equal(t, uint32(0x02000001), binary.LittleEndian.Uint32(got[0:]))
	assert.Equal(t, uint32(1<<13), binary.LittleEndian.Uint32(got[4:]))

	v2 := string(got)
	hdr = &tar.Header{PAXRecords: map[string]string{"SCHILY.xattr.security.capability": v2}}
	unshiftCaps(hdr)
	assert.Equal(t, v2, hdr.PAXRecords["SCHILY.xattr.security.capability"], "revision 2 is left alone")
}
