package images

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCorruptIndexRebuilt (issue 18): an index.json that does not parse
// is moved aside and rebuilt from the image files (unified and split),
// each checked against its fingerprint again; a file that no longer
// matches its name is removed; aliases are lost, the images work.
func TestCorruptIndexRebuilt(t *testing.T) {
	s := newStore(t)
	src := t.TempDir()
	uni, err := s.Import(context.Background(), []string{writeFile(t, src, "u", mkTar(t, unifiedEnts(testMeta)))}, ImportOptions{Aliases: []string{"uni"}})
	require.NoError(t, err)
	meta := writeFile(t, src, "m", mkTar(t, []ent{{name: "metadata.yaml", body: strings.Replace(testMeta, "testos", "split", 1)}}))
	rootfs := writeFile(t, src, "r", mkTar(t, rootfsEnts("")))
	split, err := s.Import(context.Background(), []string{meta, rootfs}, ImportOptions{Aliases: []string{"split"}})
	require.NoError(t, err)
	bogus := strings.Repeat("ab", 32)
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), bogus), []byte("not what its name says"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), "index.json"), []byte(`{"images": [{"fingerpri`), 0o600))

	all, err := s.List()
	require.NoError(t, err)
	var fps []string
	for _, img := range all {
		fps = append(fps, img.Fingerprint)
		assert.Empty(t, img.Aliases)
	}
	assert.ElementsMatch(t, []string{uni.Fingerprint, split.Fingerprint}, fps)
	got, err := s.Resolve(split.Fingerprint[:12])
	require.NoError(t, err)
	assert.True(t, got.Split)
	assert.Equal(t, split.Size, got.Size)
	_, err = s.Unpack(context.Background(), got, t.TempDir(), UnpackOptions{SkipDevices: true})
	require.NoError(t, err, "a recovered image unpacks")
	assert.NoFileExists(t, filepath.Join(s.Dir(), bogus), "a file that is no image is removed")
	aside, _ := filepath.Glob(filepath.Join(s.Dir(), "index.json.corrupt-*"))
	assert.Len(t, aside, 1, "the corrupt index is kept aside")

	// The rebuilt index is an index: the next change works.
	_, err = s.Record(uni.Fingerprint, ImportOptions{Aliases: []string{"uni"}})
	require.NoError(t, err)
}
