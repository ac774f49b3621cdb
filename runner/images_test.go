package runner_test

import (
	"strings"
	"testing"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/runner"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestResolveUnknownImageOnce: an unknown image's error names it once (it
// said "image x: image \"x\": image not found") and stays ErrNotFound.
func TestResolveUnknownImageOnce(t *testing.T) {
	store, err := images.Open(t.TempDir())
	require.NoError(t, err)
	s := &runner.StoreImages{Store: store}
	_, err = s.ResolveImage(t.Context(), "nosuchimage")
	require.ErrorIs(t, err, images.ErrNotFound)
	assert.Equal(t, 1, strings.Count(err.Error(), "nosuchimage"), err.Error())
}

// TestJobUnknownImageOnce: a job whose image the store does not have fails
// as a host error naming the job once and the image once.
func TestJobUnknownImageOnce(t *testing.T) {
	f := newRunner(t)
	j := job("noimg", "true")
	j.Image = "nosuchimage"
	res := f.r.RunJob(t.Context(), j)
	assert.Equal(t, runner.OutcomeError, res.Outcome)
	assert.Equal(t, 1, strings.Count(res.Error, "nosuchimage"), res.Error)
	f.assertClean(t)
}
