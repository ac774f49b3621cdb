package simplestreams_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/simplestreams"
	"github.com/stretchr/testify/require"
	"github.com/ulikunitz/xz"
)

// tarOf is a tar archive of name → contents (a trailing "/" makes a
// directory), in the order given.
func tarOf(t *testing.T, ents ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i < len(ents); i += 2 {
		h := &tar.Header{Name: ents[i], Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(ents[i+1])), ModTime: time.Unix(1700000000, 0)}
		if strings.HasSuffix(ents[i], "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		require.NoError(t, tw.WriteHeader(h))
		_, err := tw.Write([]byte(ents[i+1]))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

func xzOf(t *testing.T, data []byte) []byte {
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	require.NoError(t, err)
	_, err = w.Write(data)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func gzOf(t *testing.T, data []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, err := w.Write(data)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func metadata(os, release string) string {
	return fmt.Sprintf("architecture: x86_64\ncreation_date: 1700000000\nproperties:\n  os: %s\n  release: %s\n  description: %s %s\n", os, release, os, release)
}

// writeVersion writes a product version's files into the tree: lxd.tar.xz,
// root.tar.xz, rootfs.squashfs (a stand-in: import only sniffs it), and a
// VM disk the client must skip.
func writeVersion(t *testing.T, tree, dir, osName, release string) {
	t.Helper()
	d := filepath.Join(tree, dir)
	require.NoError(t, os.MkdirAll(d, 0o755))
	files := map[string][]byte{
		"lxd.tar.xz":      xzOf(t, tarOf(t, "metadata.yaml", metadata(osName, release))),
		"root.tar.xz":     xzOf(t, tarOf(t, "etc/", "", "etc/os-release", "ID="+osName+"\nVERSION="+dir+"\n")),
		"rootfs.squashfs": append([]byte("hsqs"), bytes.Repeat([]byte(dir), 64)...),
		"disk.qcow2":      []byte("QFI\xfb not a real disk " + dir),
	}
	for n, data := range files {
		require.NoError(t, os.WriteFile(filepath.Join(d, n), data, 0o644))
	}
}

const (
	bb1   = "images/busybox/1.36/amd64/default/20240101_12:00"
	bb2   = "images/busybox/1.36/amd64/default/20240102_12:00"
	combo = "images/combo/1/amd64/default/20240101_12:00"
)

// lxdTree writes a simplestreams tree in the format of LXD's public image
// server (testdata/images.json.tmpl) and returns its directory. With
// newer, busybox has a second, newer version.
func lxdTree(t *testing.T, newer bool) string {
	t.Helper()
	tree := t.TempDir()
	writeVersion(t, tree, bb1, "busybox", "1.36")
	if newer {
		writeVersion(t, tree, bb2, "busybox", "1.36")
	}
	writeVersion(t, tree, "images/debian/12/amd64/cloud/20240301_05:24", "debian", "bookworm")
	writeVersion(t, tree, "images/armonly/1/arm64/default/20240101_12:00", "armonly", "1")
	require.NoError(t, os.MkdirAll(filepath.Join(tree, combo), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(tree, combo, "lxd_combined.tar.gz"),
		gzOf(t, tarOf(t, "metadata.yaml", metadata("combo", "1"), "rootfs/", "", "rootfs/etc/", "", "rootfs/etc/hostname", "combo\n")), 0o644))
	renderTree(t, tree)
	return tree
}

// renderTree (re)writes the tree's streams/v1 from its files.
func renderTree(t *testing.T, tree string) {
	t.Helper()
	read := func(p string) []byte {
		data, err := os.ReadFile(filepath.Join(tree, p))
		require.NoError(t, err)
		return data
	}
	sum := func(ps ...string) string {
		h := sha256.New()
		for _, p := range ps {
			h.Write(read(p))
		}
		return hex.EncodeToString(h.Sum(nil))
	}
	tmpl := template.Must(template.New("images.json.tmpl").Funcs(template.FuncMap{
		"sha":      func(p string) string { return sum(p) },
		"combined": func(p, q string) string { return sum(p, q) },
		"size":     func(p string) int { return len(read(p)) },
		"exists":   func(p string) bool { _, err := os.Stat(filepath.Join(tree, p)); return err == nil },
	}).ParseFiles("testdata/images.json.tmpl"))
	var buf bytes.Buffer
	require.NoError(t, tmpl.Execute(&buf, nil))
	require.True(t, json.Valid(buf.Bytes()), "rendered images.json is JSON:\n%s", buf.String())
	require.NoError(t, os.MkdirAll(filepath.Join(tree, "streams/v1"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(tree, "streams/v1/images.json"), buf.Bytes(), 0o644))
	index, err := os.ReadFile("testdata/index.json")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(tree, "streams/v1/index.json"), index, 0o644))
}

// editJSON rewrites the tree's JSON document p through edit.
func editJSON[T any](t *testing.T, tree, p string, edit func(doc *T)) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(tree, p))
	require.NoError(t, err)
	var doc T
	require.NoError(t, json.Unmarshal(data, &doc))
	edit(&doc)
	data, err = json.Marshal(&doc)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(tree, p), data, 0o644))
}

// fileServer serves a tree under /mirror/ on 127.0.0.1, as a plain HTTP
// file server does, counting the item (non-JSON) requests.
type fileServer struct {
	*httptest.Server
	items atomic.Int64
}

func serveTree(t *testing.T, tree string) *fileServer {
	t.Helper()
	fs := &fileServer{}
	files := http.StripPrefix("/mirror", http.FileServer(http.Dir(tree)))
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, ".json") {
			fs.items.Add(1)
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(fs.Close)
	return fs
}

func remoteOf(name, url string) images.Remote {
	return images.Remote{Name: name, URL: url, Protocol: images.ProtocolSimplestreams}
}

func newClient(t *testing.T, url string, o simplestreams.Options) *simplestreams.Client {
	t.Helper()
	c, err := simplestreams.New(remoteOf("ss", url), o)
	require.NoError(t, err)
	return c
}

func newStore(t *testing.T) *images.Store {
	t.Helper()
	s, err := images.Open(filepath.Join(t.TempDir(), "images"))
	require.NoError(t, err)
	return s
}

// storeNames lists the store directory, lock file and index aside: an
// image's files, or a leftover temporary file.
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

func sha(t *testing.T, tree string, ps ...string) string {
	h := sha256.New()
	for _, p := range ps {
		data, err := os.ReadFile(filepath.Join(tree, p))
		require.NoError(t, err)
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))
}
