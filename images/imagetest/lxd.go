package imagetest

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/stintdev/stint/images"
	"github.com/stretchr/testify/require"
)

var (
	creationRE = regexp.MustCompile(`(?m)^creation_date: .*$`)
	buildRE    = regexp.MustCompile(`(?m)^\s+stint\.build: .*\n`)
)

// Restamp imports into s a copy of the unified gzip image img (a busybox
// build) made at created, with files (rootfs path → contents) added: a
// newer version of the same image, as a remote publishes one (without the
// build's stint.build property). The aliases move to it.
func Restamp(t testing.TB, s *images.Store, img *images.Image, created time.Time, files map[string]string, aliases ...string) *images.Image {
	t.Helper()
	f, err := os.Open(img.Path())
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err, "a unified gzip image")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		if h.Name == "metadata.yaml" {
			data = creationRE.ReplaceAll(data, fmt.Appendf(nil, "creation_date: %d", created.Unix()))
			data = buildRE.ReplaceAll(data, nil) // not a build's output any more
			h.Size = int64(len(data))
		}
		require.NoError(t, tw.WriteHeader(h))
		_, err = tw.Write(data)
		require.NoError(t, err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: "rootfs/" + n, Mode: 0o644, Typeflag: tar.TypeReg,
			Size: int64(len(files[n])), ModTime: created}))
		_, err := tw.Write([]byte(files[n]))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	p := filepath.Join(t.TempDir(), "restamped.tar.gz")
	require.NoError(t, os.WriteFile(p, buf.Bytes(), 0o644))
	out, err := s.Import(context.Background(), []string{p}, images.ImportOptions{Aliases: aliases, MoveAliases: true})
	require.NoError(t, err)
	return out
}
