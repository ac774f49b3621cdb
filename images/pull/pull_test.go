package pull_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/pull"
	"github.com/stintdev/stint/images/simplestreams"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSplitRef(t *testing.T) {
	for _, tt := range []struct{ ref, remote, alias string }{
		{"ss:heldout/bb", "ss", "heldout/bb"},
		{"images:debian/12/cloud", "images", "debian/12/cloud"},
		{"hub:library/alpine:3.20", "hub", "library/alpine:3.20"},
		{"bb", "", ""},
		{"heldout/bb", "", ""},
		{"a/b:c", "", ""},
		{":x", "", ""},
		{"x:", "", ""},
		{"oci-layout:/srv/layout:v1", "", ""},
	} {
		r, a, ok := pull.SplitRef(tt.ref)
		assert.Equal(t, tt.remote != "", ok, tt.ref)
		assert.Equal(t, tt.remote, r, tt.ref)
		assert.Equal(t, tt.alias, a, tt.ref)
	}
}

// Pull and Check through the one door: a stint store served on loopback
// is a simplestreams remote for another store.
func TestPullAndCheckSimplestreams(t *testing.T) {
	ctx := context.Background()
	testenv.RequiresTool(t, "busybox")
	src, err := images.Open(filepath.Join(t.TempDir(), "src"))
	require.NoError(t, err)
	img, err := images.BuildBusybox(ctx, src, images.BusyboxOptions{Aliases: []string{"heldout/bb"}})
	require.NoError(t, err)
	srv := httptest.NewServer(simplestreams.NewHandler(src))
	defer srv.Close()
	r := images.Remote{Name: "ss", URL: srv.URL, Protocol: images.ProtocolSimplestreams}
	dst, err := images.Open(filepath.Join(t.TempDir(), "dst"))
	require.NoError(t, err)

	res, err := pull.Pull(ctx, dst, r, "heldout/bb", pull.Options{Aliases: []string{"bb"}, Arch: "amd64"})
	require.NoError(t, err)
	assert.Equal(t, img.Fingerprint, res.Image.Fingerprint)
	assert.Equal(t, "ss:heldout/bb@"+res.Image.Source.Version, res.Image.Source.String())
	newer, err := pull.Check(ctx, r, res.Image, pull.Options{})
	require.NoError(t, err)
	assert.False(t, newer)

	_, err = pull.Check(ctx, images.Remote{Name: "other", URL: srv.URL, Protocol: images.ProtocolSimplestreams}, res.Image, pull.Options{})
	assert.ErrorIs(t, err, images.ErrInvalidRemote)
	_, err = pull.Pull(ctx, dst, images.Remote{Name: "x", URL: srv.URL, Protocol: "lxd"}, "bb", pull.Options{})
	assert.ErrorIs(t, err, images.ErrInvalidRemote)
	_, err = pull.Pull(ctx, dst, r, "nosuch", pull.Options{})
	assert.ErrorIs(t, err, images.ErrNotFound)
}
