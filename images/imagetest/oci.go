package imagetest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/stretchr/testify/require"
)

// Entry is a tar entry of a test layer: a file, or a directory (Name
// ending in "/"), a symlink or a hard link.
type Entry struct {
	Name, Body        string
	Symlink, Hardlink string // the link's target
	Mode              int64  // 0: 0644 for files, 0755 for directories
}

// Tar is a tar archive of ents, in order, with a fixed mtime.
func Tar(t testing.TB, ents []Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.Name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.Body)), ModTime: time.Unix(1700000000, 0)}
		switch {
		case strings.HasSuffix(e.Name, "/"):
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		case e.Symlink != "":
			h.Typeflag, h.Linkname, h.Size, h.Mode = tar.TypeSymlink, e.Symlink, 0, 0o777
		case e.Hardlink != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, e.Hardlink, 0
		}
		if e.Mode != 0 {
			h.Mode = e.Mode
		}
		require.NoError(t, tw.WriteHeader(h))
		_, err := tw.Write([]byte(e.Body))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// Layout writes an OCI image layout, blob by blob, as a registry client
// would see it.
type Layout struct {
	Dir   string
	t     testing.TB
	index v1.IndexManifest
}

// NewLayout starts an empty layout in dir (made if missing; "" for a
// temporary directory).
func NewLayout(t testing.TB, dir string) *Layout {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "blobs/sha256"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644))
	l := &Layout{Dir: dir, t: t, index: v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}}
	l.save()
	return l
}

// Blob stores data and returns its descriptor.
func (l *Layout) Blob(mt types.MediaType, data []byte) v1.Descriptor {
	sum := sha256.Sum256(data)
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	require.NoError(l.t, os.WriteFile(l.BlobPath(h), data, 0o644))
	return v1.Descriptor{MediaType: mt, Digest: h, Size: int64(len(data))}
}

// BlobPath is the file of blob h.
func (l *Layout) BlobPath(h v1.Hash) string { return filepath.Join(l.Dir, "blobs/sha256", h.Hex) }

// JSON stores v as a JSON blob.
func (l *Layout) JSON(mt types.MediaType, v any) v1.Descriptor {
	data, err := json.Marshal(v)
	require.NoError(l.t, err)
	return l.Blob(mt, data)
}

// Image writes an image of layers (gzip) for linux/arch with config cfg,
// created at 2023-11-14T22:13:20Z, and returns its manifest's descriptor.
func (l *Layout) Image(arch string, cfg v1.Config, layers ...[]Entry) v1.Descriptor {
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1}
	cf := v1.ConfigFile{Architecture: arch, OS: "linux", Created: v1.Time{Time: time.Unix(1700000000, 0)}, Config: cfg, RootFS: v1.RootFS{Type: "layers"}}
	for _, ents := range layers {
		raw := Tar(l.t, ents)
		sum := sha256.Sum256(raw)
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])})
		var gz bytes.Buffer
		w := gzip.NewWriter(&gz)
		_, err := w.Write(raw)
		require.NoError(l.t, err)
		require.NoError(l.t, w.Close())
		m.Layers = append(m.Layers, l.Blob(types.OCILayer, gz.Bytes()))
	}
	m.Config = l.JSON(types.OCIConfigJSON, cf)
	d := l.JSON(types.OCIManifestSchema1, m)
	d.Platform = &v1.Platform{OS: "linux", Architecture: arch}
	return d
}

// Tag names d in the layout's index.json; a tag of that name moves to d.
func (l *Layout) Tag(name string, d v1.Descriptor) {
	const key = "org.opencontainers.image.ref.name"
	d.Annotations = map[string]string{key: name}
	l.index.Manifests = slices.DeleteFunc(l.index.Manifests, func(have v1.Descriptor) bool { return have.Annotations[key] == name })
	l.index.Manifests = append(l.index.Manifests, d)
	l.save()
}

// Multi writes an index of the given manifests and returns its descriptor.
func (l *Layout) Multi(ds ...v1.Descriptor) v1.Descriptor {
	return l.JSON(types.OCIImageIndex, v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: ds})
}

func (l *Layout) save() {
	data, err := json.Marshal(l.index)
	require.NoError(l.t, err)
	require.NoError(l.t, os.WriteFile(filepath.Join(l.Dir, "index.json"), data, 0o644))
}
