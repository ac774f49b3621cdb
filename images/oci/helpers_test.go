package oci_test

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/imagetest"
	"github.com/stretchr/testify/require"
)

// ent is a tar entry of a test layer (imagetest.Entry).
type ent = imagetest.Entry

var (
	lowerLayer = []ent{
		{Name: "etc/"},
		{Name: "etc/passwd", Body: "root:x:0:0:root:/root:/bin/sh\n"},
		{Name: "etc/gone", Body: "deleted by the upper layer"},
		{Name: "opt/"},
		{Name: "opt/app/"},
		{Name: "opt/app/old", Body: "old"},
		{Name: "opt/app/sub/"},
		{Name: "opt/app/sub/deep", Body: "old deep"},
		{Name: "bin/"},
		{Name: "bin/tool", Body: "#!/bin/sh\necho tool\n"},
		{Name: "bin/sh", Symlink: "tool"},
	}
	// upperLayer deletes a file (whiteout), replaces a directory
	// opaquely and hard-links a file.
	upperLayer = []ent{
		{Name: "etc/.wh.gone"},
		{Name: "opt/app/"},
		{Name: "opt/app/.wh..wh..opq"},
		{Name: "opt/app/new", Body: "new"},
		{Name: "bin/tool-link", Hardlink: "bin/tool"},
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
