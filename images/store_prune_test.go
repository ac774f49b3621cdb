package images

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPruneKeepsBasesOfCachedRecipes: the base of a recipe's result that
// stays (in use, or recently used) is kept however old, through a chain
// of recipes; once the results go, their bases go with them.
func TestPruneKeepsBasesOfCachedRecipes(t *testing.T) {
	s := newStore(t)
	imp := func(name string, props map[string]string) *Image {
		t.Helper()
		meta := fmt.Sprintf("architecture: x86_64\ncreation_date: 1622548800\nproperties:\n  description: %s\n", name)
		f := writeFile(t, t.TempDir(), name, mkTar(t, unifiedEnts(meta)))
		img, err := s.Import(context.Background(), []string{f}, ImportOptions{Aliases: []string{name}, Properties: props})
		require.NoError(t, err)
		return img
	}
	base := imp("base", nil)
	mid := imp("mid", map[string]string{BaseProperty: base.Fingerprint})
	top := imp("top", map[string]string{BaseProperty: mid.Fingerprint})
	other := imp("other", nil)

	later := time.Now().Add(time.Hour)
	opts := PruneOptions{UnusedFor: time.Minute, Now: later, DryRun: true, InUse: map[string]bool{top.Fingerprint: true}}
	got, err := s.Prune(opts)
	require.NoError(t, err)
	require.Len(t, got, 1, "only the unrelated image goes")
	assert.Equal(t, other.Fingerprint, got[0].Fingerprint)

	opts.InUse = nil
	got, err = s.Prune(opts)
	require.NoError(t, err)
	assert.Len(t, got, 4, "no result stays: every image goes")
}

// TestTouchToTheSecond: a use is recorded to the second, so
// --unused-for 4s keeps an image used a second ago, however old it is; as
// Touch writes at most once a minute, a recorded use counts for that
// minute (a later use may be unrecorded), and the image goes after it.
func TestTouchToTheSecond(t *testing.T) {
	s := newStore(t)
	f := writeFile(t, t.TempDir(), "i", mkTar(t, unifiedEnts("architecture: x86_64\ncreation_date: 1\n")))
	img, err := s.Import(context.Background(), []string{f}, ImportOptions{})
	require.NoError(t, err)
	require.NoError(t, s.Touch(img))
	stored, err := s.Resolve(img.Fingerprint)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), stored.LastUsed, 1100*time.Millisecond)
	assert.False(t, PruneOptions{UnusedFor: 4 * time.Second, Now: time.Now().Add(time.Second)}.Prunable(stored))
	assert.False(t, PruneOptions{UnusedFor: 4 * time.Second, Now: time.Now().Add(30 * time.Second)}.Prunable(stored),
		"used again 29 s later, unrecorded: kept")
	assert.True(t, PruneOptions{UnusedFor: 4 * time.Second, Now: time.Now().Add(touchEvery + 6*time.Second)}.Prunable(stored))
}
