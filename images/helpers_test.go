package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// ent is one synthetic tar entry.
type ent struct {
	name     string
	typ      byte // tar.TypeReg by default
	mode     int64
	body     string
	link     string
	uid, gid int
	major    int64
	mtime    time.Time
}

var testTime = time.Date(2021, 6, 1, 12, 0, 0, 0, time.UTC)

// mkTar builds a tar archive of ents.
func mkTar(t *testing.T, ents []ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Uid: e.uid, Gid: e.gid, ModTime: e.mtime, Devmajor: e.major, Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.ModTime.IsZero() {
			h.ModTime = testTime
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compress compresses data with format: none, gzip, xz, zstd.
func compress(t *testing.T, format string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch format {
	case "none":
		return data
	case "gzip":
		w := gzip.NewWriter(&buf)
		w.Write(data)
		w.Close()
	case "xz":
		w, err := xz.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.Close()
	case "zstd":
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.Close()
	default:
		t.Fatalf("unknown format %s", format)
	}
	return buf.Bytes()
}

const testMeta = `architecture: x86_64
creation_date: 1622548800
expiry_date: 1937908800
properties:
  os: testos
  release: "1.0"
  description: a test image
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
  /etc/motd:
    when: [create]
    create_only: true
    template: motd.tpl
    properties:
      greeting: hello
`

// rootfsEnts is a small root filesystem.
func rootfsEnts(prefix string) []ent {
	return []ent{
		{name: prefix + "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: prefix + "bin/tool", mode: 0o4755, body: "#!/bin/sh\necho tool\n", uid: 1000, gid: 1001},
		{name: prefix + "bin/alias", typ: tar.TypeSymlink, link: "tool"},
		{name: prefix + "bin/hard", typ: tar.TypeLink, link: prefix + "bin/tool"},
		{name: prefix + "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: prefix + "etc/hostname", body: "image\n"},
		{name: prefix + "tmp/", typ: tar.TypeDir, mode: 0o1777},
		{name: prefix + "dev/", typ: tar.TypeDir, mode: 0o755},
		{name: prefix + "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1},
	}
}

// unifiedEnts is a unified image: metadata.yaml, templates/, rootfs/.
func unifiedEnts(meta string) []ent {
	ents := []ent{
		{name: "metadata.yaml", body: meta},
		{name: "templates/", typ: tar.TypeDir, mode: 0o755},
		{name: "templates/hostname.tpl", body: "{{ container.name }}\n"},
		{name: "templates/motd.tpl", body: "{{ properties.greeting }} from {{ container.name }} ({{ trigger }})\n"},
		{name: "rootfs/", typ: tar.TypeDir, mode: 0o755},
	}
	return append(ents, rootfsEnts("rootfs/")...)
}

// writeFile writes data into dir/name and returns the path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func sha(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// newStore opens a store in a fresh temporary directory.
func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
