package oci_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/stintdev/stint/images"
	"github.com/stretchr/testify/require"
)

// ent is a tar entry of a test layer: a file, or a directory (name ending
// in "/"), a symlink ("->" target) or a hard link ("=>" target).
type ent struct {
	name, body, symlink, hardlink string
	mode                          int64 // 0: 0644 for files, 0755 for directories
}

func tarOf(t *testing.T, ents []ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body)), ModTime: time.Unix(1700000000, 0)}
		switch {
		case strings.HasSuffix(e.name, "/"):
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		case e.symlink != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.symlink, 0
		case e.hardlink != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, e.hardlink, 0
		}
		if e.mode != 0 {
			h.Mode = e.mode
		}
		require.NoError(t, tw.WriteHeader(h))
		_, err := tw.Write([]byte(e.body))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// layout writes an OCI image layout, blob by blob, as a registry client
// would see it.
type layout struct {
	t     *testing.T
	dir   string
	index v1.IndexManifest
}

func newLayout(t *testing.T) *layout {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "blobs/sha256"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644))
	l := &layout{t: t, dir: dir, index: v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}}
	l.save()
	return l
}

func (l *layout) blob(mt types.MediaType, data []byte) v1.Descriptor {
	sum := sha256.Sum256(data)
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	require.NoError(l.t, os.WriteFile(l.blobPath(h), data, 0o644))
	return v1.Descriptor{MediaType: mt, Digest: h, Size: int64(len(data))}
}

func (l *layout) blobPath(h v1.Hash) string { return filepath.Join(l.dir, "blobs/sha256", h.Hex) }

func (l *layout) json(mt types.MediaType, v any) v1.Descriptor {
	data, err := json.Marshal(v)
	require.NoError(l.t, err)
	return l.blob(mt, data)
}

// image writes an image of layers (each a list of entries) for arch and
// returns its manifest's descriptor.
func (l *layout) image(arch string, cfg v1.Config, layers ...[]ent) v1.Descriptor {
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1}
	cf := v1.ConfigFile{Architecture: arch, OS: "linux", Created: v1.Time{Time: time.Unix(1700000000, 0)}, Config: cfg, RootFS: v1.RootFS{Type: "layers"}}
	for _, ents := range layers {
		raw := tarOf(l.t, ents)
		sum := sha256.Sum256(raw)
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])})
		var gz bytes.Buffer
		w := gzip.NewWriter(&gz)
		_, err := w.Write(raw)
		require.NoError(l.t, err)
		require.NoError(l.t, w.Close())
		m.Layers = append(m.Layers, l.blob(types.OCILayer, gz.Bytes()))
	}
	m.Config = l.json(types.OCIConfigJSON, cf)
	d := l.json(types.OCIManifestSchema1, m)
	d.Platform = &v1.Platform{OS: "linux", Architecture: arch}
	return d
}

// tag names d in the layout's index.json.
func (l *layout) tag(name string, d v1.Descriptor) {
	d.Annotations = map[string]string{"org.opencontainers.image.ref.name": name}
	l.index.Manifests = append(l.index.Manifests, d)
	l.save()
}

// multi writes an index of the given manifests and returns its descriptor.
func (l *layout) multi(ds ...v1.Descriptor) v1.Descriptor {
	return l.json(types.OCIImageIndex, v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: ds})
}

func (l *layout) save() {
	data, err := json.Marshal(l.index)
	require.NoError(l.t, err)
	require.NoError(l.t, os.WriteFile(filepath.Join(l.dir, "index.json"), data, 0o644))
}

var (
	lowerLayer = []ent{
		{name: "etc/"},
		{name: "etc/passwd", body: "root:x:0:0:root:/root:/bin/sh\n"},
		{name: "etc/gone", body: "deleted by the upper layer"},
		{name: "opt/"},
		{name: "opt/app/"},
		{name: "opt/app/old", body: "old"},
		{name: "opt/app/sub/"},
		{name: "opt/app/sub/deep", body: "old deep"},
		{name: "bin/"},
		{name: "bin/tool", body: "#!/bin/sh\necho tool\n"},
		{name: "bin/sh", symlink: "tool"},
	}
	// upperLayer deletes a file (whiteout), replaces a directory
	// opaquely and hard-links a file.
	upperLayer = []ent{
		{name: "etc/.wh.gone"},
		{name: "opt/app/"},
		{name: "opt/app/.wh..wh..opq"},
		{name: "opt/app/new", body: "new"},
		{name: "bin/tool-link", hardlink: "bin/tool"},
	}
	wantTree = []string{
		"bin/",
		"bin/sh -> tool",
		"bin/tool = #!/bin/sh\necho tool\n",
		"bin/tool-link = #!/bin/sh\necho tool\n",
		"etc/",
		"etc/passwd = root:x:0:0:root:/root:/bin/sh\n",
		"opt/",
		"opt/app/",
		"opt/app/new = new",
	}
	testConfig = v1.Config{
		Env:        []string{"PATH=/usr/bin:/bin", "APP=1"},
		WorkingDir: "/opt/app",
		User:       "1000:1000",
		Entrypoint: []string{"/bin/tool"},
		Cmd:        []string{"--serve"},
	}
)

func newStore(t *testing.T) *images.Store {
	t.Helper()
	s, err := images.Open(filepath.Join(t.TempDir(), "images"))
	require.NoError(t, err)
	return s
}

// unpacked unpacks img from s and lists its tree as "path = contents",
// "dir/", "link -> target", sorted; hard links share an inode.
func unpacked(t *testing.T, s *images.Store, img *images.Image) ([]string, string) {
	t.Helper()
	dir := t.TempDir()
	_, err := s.Unpack(t.Context(), img, dir, images.UnpackOptions{SkipDevices: true})
	require.NoError(t, err)
	var out []string
	require.NoError(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		require.NoError(t, err)
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case fi.IsDir():
			out = append(out, rel+"/")
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, rel+" -> "+target)
		default:
			data, _ := os.ReadFile(p)
			out = append(out, rel+" = "+string(data))
		}
		return nil
	}))
	sort.Strings(out)
	return out, dir
}

// storeNames lists the store directory without its lock and index.
func storeNames(t *testing.T, s *images.Store) []string {
	t.Helper()
	ents, err := os.ReadDir(s.Dir())
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		if e.Name() != ".lock" && e.Name() != "index.json" {
			out = append(out, e.Name())
		}
	}
	return out
}
