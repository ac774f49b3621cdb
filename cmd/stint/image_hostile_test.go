package main

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A hostile image is refused at import with exit 2 and the entry's name,
// and nothing is stored.
func TestImageImportHostile(t *testing.T) {
	tests := []struct {
		name  string
		ents  []tar.Header
		entry string
	}{
		{"absolute hard link", []tar.Header{
			{Name: "rootfs/evil", Typeflag: tar.TypeLink, Linkname: "/etc/shadow"},
		}, `"rootfs/evil": hard link to "/etc/shadow": absolute path`},
		{"write through a symlink", []tar.Header{
			{Name: "rootfs/etc", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
			{Name: "rootfs/etc/cron.d/evil", Typeflag: tar.TypeReg},
		}, `"rootfs/etc/cron.d/evil": path goes through a symlink`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			meta := "architecture: x86_64\ncreation_date: 1\n"
			require.NoError(t, tw.WriteHeader(&tar.Header{Name: "metadata.yaml", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(meta))}))
			_, err := tw.Write([]byte(meta))
			require.NoError(t, err)
			require.NoError(t, tw.WriteHeader(&tar.Header{Name: "rootfs/", Typeflag: tar.TypeDir, Mode: 0o755}))
			for _, h := range tt.ents {
				h.Mode = 0o644
				require.NoError(t, tw.WriteHeader(&h))
			}
			require.NoError(t, tw.Close())
			file := filepath.Join(t.TempDir(), "hostile.tar")
			require.NoError(t, os.WriteFile(file, buf.Bytes(), 0o644))

			root := t.TempDir()
			_, errs, code := runImage(t, root, "image", "import", file)
			assert.Equal(t, ExitUsage, code)
			assert.Contains(t, errs, "unsafe tarball entry "+tt.entry)
			out, _, code := runImage(t, root, "--json", "image", "list")
			require.Equal(t, ExitOK, code)
			assert.Equal(t, "[]\n", out, "nothing stored")
		})
	}
}
