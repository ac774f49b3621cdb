package main

import (
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/imagetest"
	"github.com/stintdev/stint/images/simplestreams"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serveBusyboxStore builds a busybox image aliased heldout/bb in a root of
// its own and serves that root's store as a simplestreams remote on
// loopback; the store is returned so a test can publish newer versions.
func serveBusyboxStore(t *testing.T) (*httptest.Server, *images.Store, *images.Image) {
	t.Helper()
	testenv.RequiresTool(t, "busybox")
	src := t.TempDir()
	out, errs, code := runImage(t, src, "--json", "image", "build", "--builder", "busybox", "--alias", "heldout/bb")
	require.Equal(t, ExitOK, code, errs)
	var built []images.Image
	require.NoError(t, json.Unmarshal([]byte(out), &built))
	s, err := images.Open(filepath.Join(src, "images"))
	require.NoError(t, err)
	img, err := s.Resolve(built[0].Fingerprint)
	require.NoError(t, err)
	srv := httptest.NewServer(simplestreams.NewHandler(s))
	t.Cleanup(srv.Close)
	return srv, s, img
}

// TestImageRefresh: `image refresh IMAGE` asks the image's remote and pulls
// a newer version, moving the local alias and keeping the old image;
// without arguments it refreshes the images pulled with --auto-update
// only; a remote that is gone is exit 3 naming the image's source.
func TestImageRefresh(t *testing.T) {
	srv, src, old := serveBusyboxStore(t)
	root := t.TempDir()
	addRemote(t, root, "ss", srv.URL, remote.ProtocolSimplestreams)
	_, errs, code := runImage(t, root, "image", "pull", "ss:heldout/bb", "--alias", "bb")
	require.Equal(t, ExitOK, code, errs)
	assert.False(t, listImages(t, root)[0].Source.AutoUpdate, "image pull: no auto-update unless asked")

	out, errs, code := runImage(t, root, "image", "refresh")
	require.Equal(t, ExitOK, code, errs)
	assert.Empty(t, out, "no image auto-updates")
	out, errs, code = runImage(t, root, "image", "refresh", "bb")
	require.Equal(t, ExitOK, code, errs)
	assert.Equal(t, "ss:heldout/bb: "+old.Fingerprint[:12]+" up to date\n", out)

	newer := imagetest.Restamp(t, src, old, time.Now().Add(-time.Hour), map[string]string{"etc/version": "2\n"}, "heldout/bb")
	out, errs, code = runImage(t, root, "image", "refresh", "bb")
	require.Equal(t, ExitOK, code, errs)
	assert.Equal(t, "ss:heldout/bb: "+newer.Fingerprint[:12]+" refreshed from "+old.Fingerprint[:12]+"\n", out)
	imgs := listImages(t, root)
	require.Len(t, imgs, 2, "the old image stays")
	for _, img := range imgs {
		if img.Fingerprint == newer.Fingerprint {
			assert.Equal(t, []string{"bb"}, img.Aliases, "the alias moved")
		} else {
			assert.Empty(t, img.Aliases)
		}
	}

	// --auto-update: refreshed by a bare `image refresh` (nothing newer).
	_, errs, code = runImage(t, root, "image", "pull", "ss:heldout/bb", "--auto-update")
	require.Equal(t, ExitOK, code, errs)
	out, errs, code = runImage(t, root, "--json", "image", "refresh")
	require.Equal(t, ExitOK, code, errs)
	var res []refreshed
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.Len(t, res, 1, out)
	assert.Equal(t, refreshed{Source: "ss:heldout/bb", Fingerprint: newer.Fingerprint}, res[0])

	srv.Close()
	_, errs, code = runImage(t, root, "image", "refresh", "bb")
	assert.Equal(t, ExitHost, code, errs)
	assert.Contains(t, errs, "from ss:heldout/bb")
	_, errs, code = runImage(t, root, "image", "refresh", "nosuch")
	assert.Equal(t, ExitUsage, code, errs)
}

// TestRunAutoUpdate: a job's [image.*] pulled from a simplestreams remote
// on loopback auto-updates on use: after its refresh interval a newer
// version on the remote is pulled and the job runs on it; once the remote
// is gone the job still runs, on the cached image, with a warning.
func TestRunAutoUpdate(t *testing.T) {
	f := newCLI(t)
	srv, src, old := serveBusyboxStore(t)
	addRemote(t, f.root, "ss", srv.URL, remote.ProtocolSimplestreams)
	p := f.spec(t, `
[image.base]
source = "ss:heldout/bb"
refresh = "1s"

[job.v]
image = "base"
run = ["echo version-$(cat /etc/version 2>/dev/null || echo 1)"]
`)
	got, code := f.run(t, "run", p)
	require.Equal(t, 0, code, got)
	assert.Contains(t, got, "version-1")

	imagetest.Restamp(t, src, old, time.Now().Add(-time.Hour), map[string]string{"etc/version": "2"}, "heldout/bb")
	time.Sleep(1100 * time.Millisecond)
	got, code = f.run(t, "run", p)
	require.Equal(t, 0, code, got)
	assert.Contains(t, got, "version-2", "the newer version was pulled and used")

	srv.Close()
	time.Sleep(1100 * time.Millisecond)
	got, code = f.run(t, "run", p)
	require.Equal(t, 0, code, got)
	assert.Contains(t, got, "version-2")
	assert.Contains(t, got, "image ss:heldout/bb: using the cached image")
	f.assertClean(t)
}
