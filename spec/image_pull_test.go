package spec

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestImageSourcePull: an [image.*] source naming a remote image
// (REMOTE:ALIAS, oci-layout:/path:tag) is a pull, not a file; it is
// exclusive with a builder like any source.
func TestImageSourcePull(t *testing.T) {
	for _, ref := range []string{"ss:heldout/bb", "images:alpine/3.20", "hub:library/alpine:3.20", "oci-layout:/srv/app:v1"} {
		set := mustLoad(t, `version = 1
[image.x]
source = "`+ref+`"
[job.j]
image = "x"
run = ["true"]
`)
		require.Len(t, set.Images, 1, ref)
		assert.Equal(t, ref, set.Images[0].Pull)
		assert.Empty(t, set.Images[0].Source, ref)
	}
	_, err := loadText(t, `version = 1
[image.x]
source = "ss:heldout/bb"
builder = "busybox"
`, Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exclusive")
	_, err = loadText(t, `version = 1
[image.x]
source = "no-such-file.tar.gz"
`, Options{})
	require.Error(t, err, "a plain name is still a file that must exist")
}
