package images

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestImportUnifiedFormats(t *testing.T) {
	for _, format := range []string{"none", "gzip", "xz", "zstd"} {
		t.Run(format, func(t *testing.T) {
			s := newStore(t)
			data := compress(t, format, mkTar(t, unifiedEnts(testMeta)))
			// The file name lies on purpose: the format comes from the bytes.
			src := writeFile(t, t.TempDir(), "image.bin", data)
			var last, total int64
			img, err := s.Import(context.Background(), []string{src}, ImportOptions{
				Aliases:  []string{"test"},
				Progress: func(d, tot int64) { last, total = d, tot },
			})
			require.NoError(t, err)
			assert.Equal(t, sha(data), img.Fingerprint)
			assert.Equal(t, format, img.Compression)
			assert.False(t, img.Split)
			assert.Equal(t, int64(len(data)), img.Size)
			assert.Equal(t, int64(len(data)), last)
			assert.Equal(t, int64(len(data)), total)
			assert.Equal(t, "x86_64", img.Architecture)
			assert.Equal(t, time.Unix(1622548800, 0).UTC(), img.Created)
			assert.Equal(t, time.Unix(1937908800, 0).UTC(), img.Expires)
			assert.Equal(t, map[string]string{"os": "testos", "release": "1.0", "description": "a test image"}, img.Properties)
			assert.Equal(t, []string{"test"}, img.Aliases)
			assert.Equal(t, []string{"create", "copy"}, img.Templates["/etc/hostname"].When)

			// Export is byte-identical, named like `lxc image export`.
			out := t.TempDir()
			paths, err := s.Export(context.Background(), img, out, nil)
			require.NoError(t, err)
			require.Len(t, paths, 1)
			assert.Equal(t, img.Fingerprint+tarExt(format), filepath.Base(paths[0]))
			got, err := os.ReadFile(paths[0])
			require.NoError(t, err)
			assert.True(t, bytes.Equal(data, got), "export differs from the import")

			// A fresh handle on the same directory sees the same image.
			s2, err := Open(s.Dir())
			require.NoError(t, err)
			again, err := s2.Resolve("test")
			require.NoError(t, err)
			assert.Equal(t, img.Fingerprint, again.Fingerprint)
			assertNoTemp(t, s)
		})
	}
}

func TestImportSplit(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	meta := compress(t, "xz", mkTar(t, unifiedEnts(testMeta)[:4]))
	rootfs := compress(t, "gzip", mkTar(t, rootfsEnts("")))
	mp := writeFile(t, dir, "meta", meta)
	rp := writeFile(t, dir, "rootfs", rootfs)
	img, err := s.Import(context.Background(), []string{mp, rp}, ImportOptions{Fingerprint: sha(meta, rootfs)})
	require.NoError(t, err)
	assert.Equal(t, sha(meta, rootfs), img.Fingerprint, "split fingerprint = sha256(meta || rootfs)")
	assert.True(t, img.Split)
	assert.Equal(t, "xz", img.Compression)
	assert.Equal(t, "gzip", img.RootfsFormat)
	assert.Equal(t, int64(len(meta)+len(rootfs)), img.Size)

	out := t.TempDir()
	paths, err := s.Export(context.Background(), img, out, nil)
	require.NoError(t, err)
	require.Len(t, paths, 2)
	assert.Equal(t, "meta-"+img.Fingerprint+".tar.xz", filepath.Base(paths[0]))
	assert.Equal(t, img.Fingerprint+".tar.gz", filepath.Base(paths[1]))
	for i, want := range [][]byte{meta, rootfs} {
		got, err := os.ReadFile(paths[i])
		require.NoError(t, err)
		assert.True(t, bytes.Equal(want, got), "export %d differs", i)
	}

	target := t.TempDir()
	_, err = s.Unpack(context.Background(), img, target, UnpackOptions{SkipDevices: true})
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(target, "etc/hostname"))
	require.NoError(t, err)
	assert.Equal(t, "image\n", string(b))
}

func TestImportRejects(t *testing.T) {
	tests := []struct {
		name    string
		files   func(t *testing.T, dir string) []string
		opts    ImportOptions
		wantErr error
		wantMsg string
	}{
		{"wrong fingerprint", func(t *testing.T, dir string) []string {
			return []string{writeFile(t, dir, "i", mkTar(t, unifiedEnts(testMeta)))}
		}, ImportOptions{Fingerprint: strings.Repeat("0", 64)}, ErrFingerprintMismatch, "expected 0000"},
		{"no architecture", func(t *testing.T, dir string) []string {
			return []string{writeFile(t, dir, "i", mkTar(t, unifiedEnts("creation_date: 1\n")))}
		}, ImportOptions{}, ErrInvalidImage, "missing architecture"},
		{"no creation_date", func(t *testing.T, dir string) []string {
			return []string{writeFile(t, dir, "i", mkTar(t, unifiedEnts("architecture: x86_64\n")))}
		}, ImportOptions{}, ErrInvalidImage, "missing creation_date"},
		{"metadata too large", func(t *testing.T, dir string) []string {
			big := testMeta + "# " + strings.Repeat("x", MaxMetadataSize) + "\n"
			return []string{writeFile(t, dir, "i", mkTar(t, unifiedEnts(big)))}
		}, ImportOptions{}, ErrInvalidImage, "larger than"},
		{"metadata not yaml", func(t *testing.T, dir string) []string {
			return []string{writeFile(t, dir, "i", mkTar(t, unifiedEnts("architecture: [\n")))}
		}, ImportOptions{}, ErrInvalidImage, "metadata.yaml"},
		{"no metadata", func(t *testing.T, dir string) []string {
			return []string{writeFile(t, dir, "i", mkTar(t, rootfsEnts("rootfs/")))}
		}, ImportOptions{}, ErrInvalidImage, "no metadata.yaml"},
		{"unified without rootfs", func(t *testing.T, dir string) []string {
			return []string{writeFile(t, dir, "i", mkTar(t, unifiedEnts(testMeta)[:4]))}
		}, ImportOptions{}, ErrInvalidImage, "without rootfs"},
		{"not an archive", func(t *testing.T, dir string) []string {
			return []string{writeFile(t, dir, "i.tar.gz", []byte(strings.Repeat("hello ", 200)))}
		}, ImportOptions{}, ErrInvalidImage, "unknown format"},
		{"template path escapes", func(t *testing.T, dir string) []string {
			m := "architecture: x86_64\ncreation_date: 1\ntemplates:\n  /etc/x:\n    template: ../../x\n"
			return []string{writeFile(t, dir, "i", mkTar(t, unifiedEnts(m)))}
		}, ImportOptions{}, ErrInvalidImage, "not a file name"},
		{"bad alias", func(t *testing.T, dir string) []string {
			return []string{writeFile(t, dir, "i", mkTar(t, unifiedEnts(testMeta)))}
		}, ImportOptions{Aliases: []string{"a b"}}, ErrInvalidAlias, "white space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			_, err := s.Import(context.Background(), tt.files(t, t.TempDir()), tt.opts)
			require.Error(t, err)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
			}
			assert.Contains(t, err.Error(), tt.wantMsg)
			imgs, err := s.List()
			require.NoError(t, err)
			assert.Empty(t, imgs)
			assertNoTemp(t, s)
		})
	}
}

// assertNoTemp checks that the store holds only index, lock and image files.
func assertNoTemp(t *testing.T, s *Store) {
	t.Helper()
	ents, err := os.ReadDir(s.Dir())
	require.NoError(t, err)
	for _, e := range ents {
		assert.False(t, strings.HasPrefix(e.Name(), ".tmp"), "left behind: %s", e.Name())
	}
}

func TestAliasesAndReimport(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	a := writeFile(t, dir, "a", compress(t, "gzip", mkTar(t, unifiedEnts(testMeta))))
	b := writeFile(t, dir, "b", mkTar(t, unifiedEnts(strings.Replace(testMeta, "testos", "other", 1))))
	ctx := context.Background()

	imgA, err := s.Import(ctx, []string{a}, ImportOptions{Aliases: []string{"one"}})
	require.NoError(t, err)
	again, err := s.Import(ctx, []string{a}, ImportOptions{Aliases: []string{"two"}})
	require.NoError(t, err, "re-importing an image is not an error")
	assert.Equal(t, imgA.Fingerprint, again.Fingerprint)
	assert.Equal(t, []string{"one", "two"}, again.Aliases)

	_, err = s.Import(ctx, []string{b}, ImportOptions{Aliases: []string{"one"}})
	assert.ErrorIs(t, err, ErrAliasExists)
	imgB, err := s.Import(ctx, []string{b}, ImportOptions{})
	require.NoError(t, err)

	assert.ErrorIs(t, s.AddAlias(imgB.Fingerprint, "two"), ErrAliasExists)
	require.NoError(t, s.AddAlias(imgB.Fingerprint[:12], "three"))
	got, err := s.Resolve("three")
	require.NoError(t, err)
	assert.Equal(t, imgB.Fingerprint, got.Fingerprint)

	require.NoError(t, s.RemoveAlias("two"))
	assert.ErrorIs(t, s.RemoveAlias("two"), ErrNotFound)
	_, err = s.Resolve("two")
	assert.ErrorIs(t, err, ErrNotFound)

	gone, err := s.Delete("one")
	require.NoError(t, err)
	assert.Equal(t, imgA.Fingerprint, gone.Fingerprint)
	_, err = os.Stat(gone.Path())
	assert.ErrorIs(t, err, os.ErrNotExist)
	imgs, err := s.List()
	require.NoError(t, err)
	require.Len(t, imgs, 1)
	assert.Equal(t, imgB.Fingerprint, imgs[0].Fingerprint)
}

func TestResolve(t *testing.T) {
	ix := &index{Images: []*Image{
		{Fingerprint: "abc111" + strings.Repeat("0", 58), Aliases: []string{"deb"}},
		{Fingerprint: "abc222" + strings.Repeat("0", 58), Aliases: []string{"abc1"}},
		{Fingerprint: "def333" + strings.Repeat("0", 58)},
	}}
	tests := []struct {
		ref       string
		want      int // index into ix.Images; -1 not found; -2 ambiguous
		ambiguous []string
	}{
		{"deb", 0, nil},
		{"abc1", 1, nil}, // an alias wins over a prefix
		{"abc11", 0, nil},
		{"def", 2, nil},
		{"def333" + strings.Repeat("0", 58), 2, nil},
		{"abc", -2, []string{ix.Images[0].Fingerprint, ix.Images[1].Fingerprint}},
		{"ffff", -1, nil},
		{"nope", -1, nil},
		{"", -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			img, err := resolve(ix, tt.ref)
			switch tt.want {
			case -1:
				assert.ErrorIs(t, err, ErrNotFound)
			case -2:
				var ae *AmbiguousError
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, tt.ambiguous, ae.Matches)
				assert.Contains(t, err.Error(), tt.ambiguous[1])
			default:
				require.NoError(t, err)
				assert.Equal(t, ix.Images[tt.want].Fingerprint, img.Fingerprint)
			}
		})
	}
}

func TestPrune(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	expired := &Image{Fingerprint: "a", Expires: now.Add(-time.Hour), Uploaded: now}
	fresh := &Image{Fingerprint: "b", Expires: now.Add(time.Hour), Uploaded: now.Add(-100 * time.Hour)}
	idle := &Image{Fingerprint: "c", Uploaded: now.Add(-100 * time.Hour), LastUsed: now.Add(-50 * time.Hour)}
	used := &Image{Fingerprint: "d", Uploaded: now.Add(-100 * time.Hour), LastUsed: now.Add(-time.Hour)}
	tests := []struct {
		name string
		opts PruneOptions
		img  *Image
		want bool
	}{
		{"expired", PruneOptions{Now: now}, expired, true},
		{"expired but in use", PruneOptions{Now: now, InUse: map[string]bool{"a": true}}, expired, false},
		{"not expired", PruneOptions{Now: now}, fresh, false},
		{"no expiry, no unused rule", PruneOptions{Now: now}, idle, false},
		{"unused for longer", PruneOptions{Now: now, UnusedFor: 24 * time.Hour}, idle, true},
		{"never used, imported long ago", PruneOptions{Now: now, UnusedFor: 24 * time.Hour}, fresh, true},
		{"used recently", PruneOptions{Now: now, UnusedFor: 24 * time.Hour}, used, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.opts.Prunable(tt.img))
		})
	}

	// On a real store: the expired image goes, the other stays; Touch records use.
	s := newStore(t)
	dir := t.TempDir()
	ctx := context.Background()
	old, err := s.Import(ctx, []string{writeFile(t, dir, "a", mkTar(t, unifiedEnts(strings.Replace(testMeta, "1937908800", "1000000000", 1))))}, ImportOptions{})
	require.NoError(t, err)
	keep, err := s.Import(ctx, []string{writeFile(t, dir, "b", mkTar(t, unifiedEnts(testMeta)))}, ImportOptions{})
	require.NoError(t, err)
	require.NoError(t, s.Touch(keep))
	assert.WithinDuration(t, time.Now(), keep.LastUsed, 5*time.Second)
	pruned, err := s.Prune(PruneOptions{})
	require.NoError(t, err)
	require.Len(t, pruned, 1)
	assert.Equal(t, old.Fingerprint, pruned[0].Fingerprint)
	imgs, err := s.List()
	require.NoError(t, err)
	require.Len(t, imgs, 1)
	assert.Equal(t, keep.Fingerprint, imgs[0].Fingerprint)
	assert.False(t, imgs[0].LastUsed.IsZero(), "Touch was persisted")

	// A use recorded less than a minute ago is not written again (an
	// fsync per job); an older one is.
	indexFile := filepath.Join(s.Dir(), "index.json")
	before, err := os.Stat(indexFile)
	require.NoError(t, err)
	require.NoError(t, s.Touch(imgs[0]))
	after, err := os.Stat(indexFile)
	require.NoError(t, err)
	assert.True(t, os.SameFile(before, after), "index rewritten for a use recorded seconds ago")
	require.NoError(t, s.withLock(func(ix *index) (bool, error) {
		ix.Images[0].LastUsed = time.Now().Add(-2 * touchEvery)
		return true, nil
	}))
	before, err = os.Stat(indexFile)
	require.NoError(t, err)
	require.NoError(t, s.Touch(imgs[0]))
	after, err = os.Stat(indexFile)
	require.NoError(t, err)
	assert.False(t, os.SameFile(before, after), "index not rewritten for a use recorded minutes ago")
	assert.WithinDuration(t, time.Now(), imgs[0].LastUsed, 5*time.Second)
}

// Several stint processes share a store: concurrent imports through
// separate handles must all land in the index.
func TestConcurrentImports(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "images")
	src := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		meta := strings.Replace(testMeta, "testos", "os"+string(rune('a'+i)), 1)
		p := writeFile(t, src, "img"+string(rune('a'+i)), mkTar(t, unifiedEnts(meta)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(dir)
			if err == nil {
				_, err = s.Import(context.Background(), []string{p}, ImportOptions{Aliases: []string{"alias" + string(rune('a'+i))}})
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	s, err := Open(dir)
	require.NoError(t, err)
	imgs, err := s.List()
	require.NoError(t, err)
	assert.Len(t, imgs, len(errs))
}

func TestSniff(t *testing.T) {
	tar0 := mkTar(t, []ent{{name: "x", body: "y"}})
	for _, f := range []string{"none", "gzip", "xz", "zstd"} {
		got, err := sniff(compress(t, f, tar0)[:min(512, len(compress(t, f, tar0)))])
		require.NoError(t, err)
		assert.Equal(t, f, got)
	}
	got, err := sniff([]byte("hsqs\x00\x00"))
	require.NoError(t, err)
	assert.Equal(t, "squashfs", got)
	_, err = sniff([]byte("PK\x03\x04"))
	assert.ErrorIs(t, err, ErrInvalidImage)
}
