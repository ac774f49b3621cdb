package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/simplestreams"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// servedBusybox builds a busybox image aliased heldout/bb in a root of its
// own and serves that root's store as a simplestreams remote on loopback;
// tamper, when set, rewrites every image file sent.
func servedBusybox(t *testing.T, tamper bool) (url, fp string) {
	t.Helper()
	testenv.RequiresTool(t, "busybox")
	src := t.TempDir()
	out, errs, code := runImage(t, src, "--json", "image", "build", "--builder", "busybox", "--alias", "heldout/bb")
	require.Equal(t, ExitOK, code, errs)
	var built []images.Image
	require.NoError(t, json.Unmarshal([]byte(out), &built))
	s, err := images.Open(filepath.Join(src, "images"))
	require.NoError(t, err)
	var h http.Handler = simplestreams.NewHandler(s)
	if tamper {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.URL.Path, "/images/") {
				inner.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			inner.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			if len(body) > 100 {
				body[len(body)/2] ^= 0xff
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
		})
	}
	srv := httptest.NewServer(h) // 127.0.0.1
	t.Cleanup(srv.Close)
	return srv.URL, built[0].Fingerprint
}

// addRemote stores an image remote under root through the remote package.
func addRemote(t *testing.T, root, name, url string, p remote.Protocol) {
	t.Helper()
	rs, err := remote.Open(root)
	require.NoError(t, err)
	_, err = rs.Add(t.Context(), name, url, remote.AddOptions{Protocol: p})
	require.NoError(t, err)
}

func listImages(t *testing.T, root string) []images.Image {
	t.Helper()
	out, errs, code := runImage(t, root, "--json", "image", "list")
	require.Equal(t, ExitOK, code, errs)
	var imgs []images.Image
	require.NoError(t, json.Unmarshal([]byte(out), &imgs))
	return imgs
}

// TestImagePull: image pull REMOTE:ALIAS from a simplestreams server on
// loopback (another store served): stored under the remote's fingerprint
// with the local alias and its source, a second pull is the same image;
// bad references are usage errors.
func TestImagePull(t *testing.T) {
	url, fp := servedBusybox(t, false)
	root := t.TempDir()
	addRemote(t, root, "ss", url, remote.ProtocolSimplestreams)

	out, errs, code := runImage(t, root, "image", "pull", "ss:heldout/bb", "--alias", "local/bb")
	require.Equal(t, ExitOK, code, errs)
	assert.Equal(t, "Image pulled with fingerprint: "+fp+"\n", out)
	assert.Contains(t, errs, "100%", "plain progress lines when not a terminal")
	imgs := listImages(t, root)
	require.Len(t, imgs, 1)
	assert.Equal(t, fp, imgs[0].Fingerprint)
	assert.Equal(t, []string{"local/bb"}, imgs[0].Aliases)
	require.NotNil(t, imgs[0].Source)
	assert.Equal(t, "ss", imgs[0].Source.Remote)
	assert.Equal(t, "heldout/bb", imgs[0].Source.Alias)

	out, _, code = runImage(t, root, "image", "list")
	require.Equal(t, ExitOK, code)
	assert.Regexp(t, `local/bb\s+`+fp[:12]+`.*\sss:heldout/bb@\S+\n`, out)
	out, _, code = runImage(t, root, "image", "info", "local/bb")
	require.Equal(t, ExitOK, code)
	assert.Contains(t, out, "Source: ss:heldout/bb@")

	_, errs, code = runImage(t, root, "image", "pull", "ss:heldout/bb")
	require.Equal(t, ExitOK, code, errs)
	assert.Len(t, listImages(t, root), 1, "a second pull stores nothing new")

	for ref, want := range map[string]string{
		"nosuch:heldout/bb": "no such remote",
		"ss:nosuch/image":   "not found",
		"justanalias":       "invalid remote",
	} {
		_, errs, code = runImage(t, root, "image", "pull", ref)
		assert.Equal(t, ExitUsage, code, "%s: %s", ref, errs)
		assert.Contains(t, errs, want, ref)
	}
	_, errs, code = runImage(t, root, "image", "pull", "ss:heldout/bb", "--alias", "bad alias")
	assert.Equal(t, ExitUsage, code, errs)
	_, errs, code = runImage(t, root, "image", "alias", "add", "bad alias", "local/bb")
	assert.Equal(t, ExitUsage, code, "an invalid alias is usage: %s", errs)
}

// TestImagePullTampered: a download whose bytes differ from what the
// index announces exits 3 naming the check, stores nothing (no image, no
// temporary file), and the next pull from an honest server works.
func TestImagePullTampered(t *testing.T) {
	bad, _ := servedBusybox(t, true)
	root := t.TempDir()
	addRemote(t, root, "ss", bad, remote.ProtocolSimplestreams)
	_, errs, code := runImage(t, root, "image", "pull", "ss:heldout/bb")
	assert.Equal(t, ExitHost, code, errs)
	assert.Contains(t, errs, "verif")
	assert.Empty(t, listImages(t, root))
	ents, err := os.ReadDir(filepath.Join(root, "images"))
	require.NoError(t, err)
	for _, e := range ents {
		assert.False(t, strings.HasPrefix(e.Name(), ".tmp-"), "left behind: %s", e.Name())
	}

	good, fp := servedBusybox(t, false)
	addRemote(t, root, "ok", good, remote.ProtocolSimplestreams)
	out, errs, code := runImage(t, root, "image", "pull", "ok:heldout/bb")
	require.Equal(t, ExitOK, code, errs)
	assert.Contains(t, out, fp)
}

// TestImagePullServerGone: a remote that hangs up on every request fails
// the pull with exit 3 (a network error is the host's), quickly.
func TestImagePullServerGone(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hj, _ := w.(http.Hijacker)
		c, _, err := hj.Hijack()
		if err == nil {
			c.Close()
		}
	}))
	defer srv.Close()
	root := t.TempDir()
	addRemote(t, root, "gone", srv.URL, remote.ProtocolSimplestreams)
	start := time.Now()
	var out, errb bytes.Buffer
	code := run([]string{"--root", root, "image", "pull", "gone:x"}, &out, &errb)
	assert.Equal(t, ExitHost, code, errb.String())
	assert.Less(t, time.Since(start), 30*time.Second)
	assert.Empty(t, out.String())
}
