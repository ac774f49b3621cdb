package images

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// importN imports a small image that differs from the others by n.
func importN(t *testing.T, s *Store, n int) *Image {
	t.Helper()
	ents := append(unifiedEnts(testMeta), ent{name: "rootfs/n", body: fmt.Sprint(n)})
	img, err := s.Import(context.Background(), []string{writeFile(t, t.TempDir(), "i", mkTar(t, ents))}, ImportOptions{})
	require.NoError(t, err)
	return img
}

// TestNameForSpec: a spec image's alias is SET/NAME, scoped by its set; a
// rebuild takes it from the old build, which is marked superseded and
// pruned; the bare NAME resolves while one image has it.
func TestNameForSpec(t *testing.T) {
	s := newStore(t)
	v1, v2, other := importN(t, s, 1), importN(t, s, 2), importN(t, s, 3)

	got, err := s.NameForSpec("proj", "bb", v1.Fingerprint)
	require.NoError(t, err)
	assert.Equal(t, []string{"proj/bb"}, got.Aliases)
	r, err := s.Resolve("bb")
	require.NoError(t, err, "the bare name resolves while it is unique")
	assert.Equal(t, v1.Fingerprint, r.Fingerprint)

	// Another set's image of the same name: both scoped aliases stay; the
	// bare name is now ambiguous, listing them.
	_, err = s.NameForSpec("other", "bb", other.Fingerprint)
	require.NoError(t, err)
	r, err = s.Resolve("proj/bb")
	require.NoError(t, err)
	assert.Equal(t, v1.Fingerprint, r.Fingerprint, "another set never takes proj's alias")
	_, err = s.Resolve("bb")
	var amb *AmbiguousError
	require.ErrorAs(t, err, &amb)
	assert.Equal(t, []string{"other/bb", "proj/bb"}, amb.Matches)

	// A rebuild of proj's bb: the alias moves, the old build is marked.
	_, err = s.NameForSpec("proj", "bb", v2.Fingerprint)
	require.NoError(t, err)
	old, err := s.Resolve(v1.Fingerprint)
	require.NoError(t, err)
	assert.Empty(t, old.Aliases)
	assert.Equal(t, v2.Fingerprint, old.Properties[SupersededProperty])
	assert.True(t, Superseded(old))
	r, err = s.Resolve("other/bb")
	require.NoError(t, err)
	assert.False(t, Superseded(r))

	// Prune takes the superseded build only (none is expired or unused).
	pruned, err := s.Prune(PruneOptions{DryRun: true})
	require.NoError(t, err)
	require.Len(t, pruned, 1)
	assert.Equal(t, v1.Fingerprint, pruned[0].Fingerprint)
	pruned, err = s.Prune(PruneOptions{DryRun: true, InUse: map[string]bool{v1.Fingerprint: true}})
	require.NoError(t, err)
	assert.Empty(t, pruned, "in use: kept")

	// Changed back (a cache hit on the old build): current again.
	got, err = s.NameForSpec("proj", "bb", v1.Fingerprint)
	require.NoError(t, err)
	assert.Equal(t, []string{"proj/bb"}, got.Aliases)
	assert.NotContains(t, got.Properties, SupersededProperty)
	cur, err := s.Resolve(v2.Fingerprint)
	require.NoError(t, err)
	assert.True(t, Superseded(cur))

	// A superseded build that a user aliased is not pruned.
	require.NoError(t, s.AddAlias(v2.Fingerprint, "keepme"))
	pruned, err = s.Prune(PruneOptions{DryRun: true})
	require.NoError(t, err)
	assert.Empty(t, pruned)

	_, err = s.NameForSpec("proj", "bb", "0000")
	assert.ErrorIs(t, err, ErrNotFound)
}

// TestNameForSpecWritesOnlyOnChange: naming an image that already has its
// alias writes nothing (jobs name their images on every resolve).
func TestNameForSpecWritesOnlyOnChange(t *testing.T) {
	s := newStore(t)
	img := importN(t, s, 1)
	_, err := s.NameForSpec("proj", "bb", img.Fingerprint)
	require.NoError(t, err)
	before, err := s.load()
	require.NoError(t, err)
	time.Sleep(10 * time.Millisecond)
	_, err = s.NameForSpec("proj", "bb", img.Fingerprint)
	require.NoError(t, err)
	after, err := s.load()
	require.NoError(t, err)
	assert.Equal(t, before, after)
}

// A bare name is looked up before a short fingerprint prefix: the image
// named "bb" is found even when some fingerprint starts with "bb".
func TestBareNameBeforeShortPrefix(t *testing.T) {
	s := newStore(t)
	a, b := importN(t, s, 1), importN(t, s, 2)
	prefix := a.Fingerprint[:2]
	_, err := s.NameForSpec("proj", prefix, b.Fingerprint)
	require.NoError(t, err)
	r, err := s.Resolve(prefix)
	require.NoError(t, err)
	assert.Equal(t, b.Fingerprint, r.Fingerprint)
}
