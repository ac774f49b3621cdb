package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestImageSourcePull: an [image.*] source naming a remote image
// (REMOTE:ALIAS, oci-layout:/path:tag) is a pull, not a file; it is
// exclusive with a builder like any source.
func TestImageSourcePull(t *testing.T) {
	layout := t.TempDir()
	for _, ref := range []string{"ss:heldout/bb", "images:alpine/3.20", "hub:library/alpine:3.20", "oci-layout:" + layout + ":v1"} {
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

// TestImageRefreshPolicy: auto_update and refresh are read for pulled
// images and refused (at their line) for any other kind.
func TestImageRefreshPolicy(t *testing.T) {
	set := mustLoad(t, `version = 1
[image.x]
source = "ss:heldout/bb"
auto_update = false
refresh = "90s"
`)
	require.Len(t, set.Images, 1)
	require.NotNil(t, set.Images[0].AutoUpdate)
	assert.False(t, *set.Images[0].AutoUpdate)
	require.NotNil(t, set.Images[0].Refresh)
	assert.Equal(t, 90*time.Second, time.Duration(*set.Images[0].Refresh))

	_, err := loadText(t, `version = 1
[image.x]
builder = "busybox"
refresh = "1h"
`, Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "spec.toml:4:")
	assert.Contains(t, err.Error(), "refresh applies only to images pulled from a remote")
	_, err = loadText(t, `version = 1
[image.x]
source = "ss:heldout/bb"
refresh = "0s"
`, Options{})
	require.Error(t, err, "a refresh interval is positive")
}

// TestOCILayoutRelative: a relative oci-layout: directory, in an
// [image.*] source or a job's image, is resolved against the spec file's
// directory (not the working directory); a missing one is an error at its
// file:line.
func TestOCILayoutRelative(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "layouts", "app"), 0o755))
	p := filepath.Join(dir, "spec.toml")
	require.NoError(t, os.WriteFile(p, []byte(`version = 1
[image.x]
source = "oci-layout:layouts/app:v1"
[job.a]
image = "x"
run = ["true"]
[job.b]
image = "oci-layout:./layouts/app"
run = ["true"]
`), 0o644))
	t.Chdir(t.TempDir()) // not the spec's directory
	set, err := Load([]string{p}, Options{})
	require.NoError(t, err)
	want := "oci-layout:" + filepath.Join(dir, "layouts", "app")
	assert.Equal(t, want+":v1", set.Images[0].Pull)
	for _, j := range set.Jobs {
		if j.Name == "b" {
			assert.Equal(t, want, j.Image)
		}
	}

	require.NoError(t, os.WriteFile(p, []byte(`version = 1
[image.x]
source = "oci-layout:missing:v1"
[job.b]
image = "oci-layout:gone/app:v2"
run = ["true"]
`), 0o644))
	_, err = Load([]string{p}, Options{})
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, p+":3:")
	assert.Contains(t, msg, p+":5:")
	assert.Contains(t, msg, `OCI layout "missing" does not exist (resolved to `+filepath.Join(dir, "missing")+")")
	assert.Equal(t, 2, strings.Count(msg, "does not exist"), msg)
}
