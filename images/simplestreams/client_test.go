package simplestreams_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/simplestreams"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A tree in the public image server's format, behind a plain file server
// on loopback under a path: each kind of product pulls with the
// fingerprint LXD would give it, the source is recorded, and a second pull
// downloads nothing.
func TestPullLXDFormat(t *testing.T) {
	ctx := context.Background()
	tree := lxdTree(t, true)
	srv := serveTree(t, tree)
	c := newClient(t, srv.URL+"/mirror", simplestreams.Options{})
	s := newStore(t)

	tests := []struct {
		alias, arch string
		wantFP      string
		wantVersion string
		wantRootfs  string
	}{
		// Split: squashfs preferred to root.tar.xz; the newest version; a VM disk skipped.
		{"heldout/bb", "", sha(t, tree, bb2+"/lxd.tar.xz", bb2+"/rootfs.squashfs"), "20240102_12:00", "squashfs"},
		// amd64 and x86_64 are the same architecture.
		{"busybox/1.36", "amd64", sha(t, tree, bb2+"/lxd.tar.xz", bb2+"/rootfs.squashfs"), "20240102_12:00", "squashfs"},
		// root.tar.xz when there is no squashfs.
		{"debian/12/cloud", "x86_64", "", "20240301_05:24", "xz"},
		// Unified.
		{"combo", "", sha(t, tree, combo+"/lxd_combined.tar.gz"), "20240101_12:00", ""},
	}
	for _, tt := range tests {
		t.Run(tt.alias, func(t *testing.T) {
			img, err := c.Pull(ctx, s, tt.alias, simplestreams.PullOptions{Arch: tt.arch, Aliases: []string{"local/" + tt.alias}})
			require.NoError(t, err)
			if tt.wantFP != "" {
				assert.Equal(t, tt.wantFP, img.Fingerprint)
			}
			assert.Equal(t, tt.wantRootfs, img.RootfsFormat)
			require.NotNil(t, img.Source)
			assert.Equal(t, "ss", img.Source.Remote)
			assert.Equal(t, tt.alias, img.Source.Alias)
			assert.Equal(t, tt.wantVersion, img.Source.Version)
			assert.Equal(t, images.ProtocolSimplestreams, img.Source.Protocol)
			assert.Equal(t, "ss:"+tt.alias+"@"+tt.wantVersion, img.Source.String())
			got, err := s.Resolve("local/" + tt.alias)
			require.NoError(t, err)
			assert.Equal(t, img.Fingerprint, got.Fingerprint)
			assert.Equal(t, tt.alias, got.Source.Alias, "the source is kept in the index")
		})
	}
	before := srv.items.Load()
	img, err := c.Pull(ctx, s, "combo", simplestreams.PullOptions{Aliases: []string{"again"}})
	require.NoError(t, err)
	assert.Equal(t, before, srv.items.Load(), "a second pull of a stored fingerprint downloads nothing")
	assert.Equal(t, []string{"again", "local/combo"}, img.Aliases)
	for _, n := range storeNames(t, s) {
		assert.False(t, strings.HasPrefix(n, ".tmp"), "left %s", n)
	}

	_, err = c.Pull(ctx, s, "nosuch/alias", simplestreams.PullOptions{})
	assert.ErrorIs(t, err, images.ErrNotFound)
	_, err = c.Pull(ctx, s, "armonly/1", simplestreams.PullOptions{})
	assert.ErrorIs(t, err, images.ErrPlatform)
	assert.ErrorContains(t, err, "aarch64")
	img, err = c.Pull(ctx, s, "armonly/1", simplestreams.PullOptions{Arch: "arm64"})
	require.NoError(t, err)
	assert.Equal(t, "xz", img.RootfsFormat)
}

// refusal is a remote's bad answer: a change to a good tree, or a server
// in front of it, and the error the pull must fail with.
type refusal struct {
	name    string
	mutate  func(t *testing.T, tree string)
	handler func(tree string, next http.Handler) http.Handler
	opts    simplestreams.Options
	wantErr error
	wantMsg string
}

const refusedItem = bb1 + "/rootfs.squashfs"

// treeRefusals are bad documents and files; other is a server elsewhere.
func treeRefusals(other *httptest.Server) []refusal {
	item := refusedItem
	otherHost := strings.TrimPrefix(other.URL, "http://")
	editItem := func(edit func(it *simplestreams.Item)) func(t *testing.T, tree string) {
		return func(t *testing.T, tree string) {
			editJSON(t, tree, "streams/v1/images.json", func(ps *simplestreams.Products) {
				it := ps.Products["busybox:1.36:amd64:default"].Versions["20240101_12:00"].Items["rootfs.squashfs"]
				edit(&it)
				ps.Products["busybox:1.36:amd64:default"].Versions["20240101_12:00"].Items["rootfs.squashfs"] = it
			})
		}
	}
	editIndex := func(path string) func(t *testing.T, tree string) {
		return func(t *testing.T, tree string) {
			editJSON(t, tree, "streams/v1/index.json", func(ix *simplestreams.Index) {
				e := ix.Index["images"]
				e.Path = path
				ix.Index["images"] = e
			})
		}
	}
	return []refusal{
		{name: "tampered sha256", mutate: editItem(func(it *simplestreams.Item) { it.SHA256 = strings.Repeat("0", 64) }),
			wantErr: images.ErrVerify, wantMsg: item + ": sha256 mismatch"},
		{name: "wrong size", mutate: editItem(func(it *simplestreams.Item) { it.Size-- }),
			wantErr: images.ErrVerify, wantMsg: item + ": size mismatch"},
		{name: "truncated download", mutate: func(t *testing.T, tree string) {
			p := filepath.Join(tree, item)
			st, err := os.Stat(p)
			require.NoError(t, err)
			require.NoError(t, os.Truncate(p, st.Size()-10))
		}, wantErr: images.ErrVerify, wantMsg: item + ": size mismatch"},
		{name: "truncated stream", handler: func(tree string, next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !strings.HasSuffix(r.URL.Path, "rootfs.squashfs") {
					next.ServeHTTP(w, r)
					return
				}
				data, _ := os.ReadFile(filepath.Join(tree, item))
				w.Header().Set("Content-Length", strconv.Itoa(len(data)))
				w.Write(data[:len(data)/2]) // then the connection closes early
			})
		}, wantMsg: "rootfs.squashfs: after"},
		{name: "tampered fingerprint", mutate: func(t *testing.T, tree string) {
			editJSON(t, tree, "streams/v1/images.json", func(ps *simplestreams.Products) {
				it := ps.Products["busybox:1.36:amd64:default"].Versions["20240101_12:00"].Items["lxd.tar.xz"]
				it.CombinedSquashfsSHA256 = strings.Repeat("ab", 32)
				ps.Products["busybox:1.36:amd64:default"].Versions["20240101_12:00"].Items["lxd.tar.xz"] = it
			})
		}, wantErr: images.ErrVerify, wantMsg: "fingerprint mismatch"},
		{name: "item absolute URL", mutate: editItem(func(it *simplestreams.Item) { it.Path = other.URL + "/x" }),
			wantErr: images.ErrRefusedURL, wantMsg: "absolute URL"},
		{name: "item scheme-relative", mutate: editItem(func(it *simplestreams.Item) { it.Path = "//" + otherHost + "/x" }),
			wantErr: images.ErrRefusedURL},
		{name: "item rooted", mutate: editItem(func(it *simplestreams.Item) { it.Path = "/" + item }),
			wantErr: images.ErrRefusedURL},
		{name: "item dot-dot", mutate: editItem(func(it *simplestreams.Item) { it.Path = "../mirror/" + item }),
			wantErr: images.ErrRefusedURL},
		{name: "item encoded dot-dot", mutate: editItem(func(it *simplestreams.Item) { it.Path = "images/%2e%2e/%2E%2E/" + item }),
			wantErr: images.ErrRefusedURL},
		{name: "item encoded slash dot-dot", mutate: editItem(func(it *simplestreams.Item) { it.Path = "images%2f..%2f..%2fx" }),
			wantErr: images.ErrRefusedURL},
		{name: "index off-server", mutate: editIndex(other.URL + "/streams/v1/images.json"), wantErr: images.ErrRefusedURL},
		{name: "index scheme-relative", mutate: editIndex("//" + otherHost + "/streams/v1/images.json"), wantErr: images.ErrRefusedURL},
	}
}

// serverRefusals are bad servers: redirects, hangs, limits.
func serverRefusals(other *httptest.Server) []refusal {
	item := refusedItem
	return []refusal{
		{name: "redirect off-server", handler: func(tree string, next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "rootfs.squashfs") {
					http.Redirect(w, r, other.URL+"/x", http.StatusFound)
					return
				}
				next.ServeHTTP(w, r)
			})
		}, wantErr: images.ErrRefusedURL, wantMsg: "redirect leaves"},
		{name: "hanging item", opts: simplestreams.Options{IdleTimeout: 300 * time.Millisecond},
			handler: func(tree string, next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if strings.HasSuffix(r.URL.Path, "rootfs.squashfs") {
						data, _ := os.ReadFile(filepath.Join(tree, item))
						w.Header().Set("Content-Length", strconv.Itoa(len(data)))
						w.Write(data[:4])
						w.(http.Flusher).Flush()
						<-r.Context().Done()
						return
					}
					next.ServeHTTP(w, r)
				})
			}, wantErr: images.ErrTimeout},
		{name: "hanging index", opts: simplestreams.Options{IdleTimeout: 300 * time.Millisecond},
			handler: func(tree string, next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
			}, wantErr: images.ErrTimeout},
		{name: "index too large", opts: simplestreams.Options{MaxJSONSize: 100}, wantErr: images.ErrBadResponse, wantMsg: "larger than 100 bytes"},
		{name: "index not JSON", mutate: func(t *testing.T, tree string) {
			require.NoError(t, os.WriteFile(filepath.Join(tree, "streams/v1/index.json"), []byte("<html>"), 0o644))
		}, wantErr: images.ErrBadResponse},
		{name: "item missing", mutate: func(t *testing.T, tree string) { require.NoError(t, os.Remove(filepath.Join(tree, item))) },
			wantErr: images.ErrBadResponse, wantMsg: "Not Found"},
	}
}

// Every bad answer of a remote is refused with a typed error naming what
// was wrong; nothing is stored, nothing temporary is left, and the next
// pull of a good remote works.
func TestPullRefused(t *testing.T) {
	item := refusedItem
	other := httptest.NewServer(http.FileServer(http.Dir(t.TempDir())))
	t.Cleanup(other.Close)
	tests := append(treeRefusals(other), serverRefusals(other)...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			tree := lxdTree(t, false)
			if tt.mutate != nil {
				tt.mutate(t, tree)
			}
			var h http.Handler = http.StripPrefix("/mirror", http.FileServer(http.Dir(tree)))
			if tt.handler != nil {
				h = tt.handler(tree, h)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			s := newStore(t)
			c := newClient(t, srv.URL+"/mirror", tt.opts)
			start := time.Now()
			_, err := c.Pull(ctx, s, "heldout/bb", simplestreams.PullOptions{Aliases: []string{"bb"}})
			require.Error(t, err)
			t.Log(err)
			assert.Less(t, time.Since(start), 10*time.Second)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
			}
			assert.Contains(t, err.Error(), tt.wantMsg)
			assert.Contains(t, err.Error(), "ss", "the error names the remote")
			var ve *images.VerifyError
			if errors.As(err, &ve) && ve.What != "fingerprint" {
				assert.Equal(t, item, ve.Item, "a verify error names the item")
			}
			assert.Empty(t, storeNames(t, s), "nothing stored, nothing left")
			list, err := s.List()
			require.NoError(t, err)
			assert.Empty(t, list)

			// The next pull, from a good remote, works.
			good := serveTree(t, lxdTree(t, false))
			img, err := newClient(t, good.URL+"/mirror", simplestreams.Options{}).Pull(ctx, s, "heldout/bb", simplestreams.PullOptions{Aliases: []string{"bb"}})
			require.NoError(t, err)
			assert.Equal(t, []string{"bb"}, img.Aliases)
		})
	}
}

// URL joins an announced path onto the remote's URL (with its path) and
// refuses every way out of it.
func TestURL(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:8000/mirror/", simplestreams.Options{})
	for _, tt := range []struct{ path, want string }{
		{"streams/v1/index.json", "http://127.0.0.1:8000/mirror/streams/v1/index.json"},
		{"images/debian/12/amd64/cloud/20240301_05:24/lxd.tar.xz", "http://127.0.0.1:8000/mirror/images/debian/12/amd64/cloud/20240301_05:24/lxd.tar.xz"},
		{"images/a%20b", "http://127.0.0.1:8000/mirror/images/a%20b"},
		{"http://127.0.0.1:8000/mirror/x", ""}, // absolute, even on the same server
		{"https://127.0.0.1:8000/mirror/x", ""},
		{"//127.0.0.1:8000/mirror/x", ""},
		{"//evil.example/x", ""},
		{"/mirror/x", ""},
		{"../x", ""},
		{"a/../../x", ""},
		{"a/./x", ""},
		{"a//x", ""},
		{"%2e%2e/x", ""},
		{"a%2f..%2f..%2fx", ""},
		{"a\\..\\x", ""},
		{"a?b=c", ""},
		{"a#frag", ""},
		{"a\x00b", ""},
		{"", ""},
		{"mailto:x@y", ""},
	} {
		u, err := c.URL(tt.path)
		if tt.want == "" {
			assert.ErrorIs(t, err, images.ErrRefusedURL, "%q", tt.path)
			continue
		}
		if assert.NoError(t, err, "%q", tt.path) {
			assert.Equal(t, tt.want, u.String())
		}
	}
}

// auto_update: Check says whether the remote has a newer version than the
// stored one; Fetch with MoveAliases takes the local alias over and keeps
// the old image.
func TestCheckAndRefresh(t *testing.T) {
	ctx := context.Background()
	tree := lxdTree(t, false)
	srv := serveTree(t, tree)
	c := newClient(t, srv.URL+"/mirror", simplestreams.Options{})
	s := newStore(t)
	old, err := c.Pull(ctx, s, "heldout/bb", simplestreams.PullOptions{Aliases: []string{"bb"}})
	require.NoError(t, err)
	up, err := c.Check(ctx, old)
	require.NoError(t, err)
	assert.False(t, up.Newer)

	writeVersion(t, tree, bb2, "busybox", "1.36")
	renderTree(t, tree)
	up, err = c.Check(ctx, old)
	require.NoError(t, err)
	require.True(t, up.Newer)
	assert.Equal(t, "20240102_12:00", up.Candidate.Version)
	before := srv.items.Load()
	_, err = c.Fetch(ctx, s, up.Candidate, simplestreams.PullOptions{Aliases: []string{"bb"}})
	assert.ErrorIs(t, err, images.ErrAliasExists, "without MoveAliases the alias stays where it is")
	_, err = c.Fetch(ctx, s, up.Candidate, simplestreams.PullOptions{Aliases: []string{"a/../b"}})
	assert.ErrorIs(t, err, images.ErrInvalidAlias)
	assert.Equal(t, before, srv.items.Load(), "a bad alias fails before downloading")
	img, err := c.Fetch(ctx, s, up.Candidate, simplestreams.PullOptions{Aliases: []string{"bb"}, MoveAliases: true})
	require.NoError(t, err)
	assert.Equal(t, "20240102_12:00", img.Source.Version)
	got, err := s.Resolve("bb")
	require.NoError(t, err)
	assert.Equal(t, img.Fingerprint, got.Fingerprint, "the alias follows the newer image")
	kept, err := s.Resolve(old.Fingerprint)
	require.NoError(t, err, "the old image is kept")
	assert.Empty(t, kept.Aliases)
	up, err = c.Check(ctx, got)
	require.NoError(t, err)
	assert.False(t, up.Newer)

	_, err = c.Check(ctx, &images.Image{Fingerprint: "x"})
	assert.ErrorIs(t, err, images.ErrInvalidRemote)
}

func TestNewRefusesBadRemotes(t *testing.T) {
	for _, r := range []images.Remote{
		{Name: "ss", URL: "http://192.0.2.1/x", Protocol: images.ProtocolSimplestreams},
		{Name: "ss", URL: "ftp://127.0.0.1/", Protocol: images.ProtocolSimplestreams},
		{Name: "ss", URL: "https://127.0.0.1/", Protocol: images.ProtocolOCI},
		{Name: "s:s", URL: "https://127.0.0.1/", Protocol: images.ProtocolSimplestreams},
	} {
		_, err := simplestreams.New(r, simplestreams.Options{})
		assert.ErrorIs(t, err, images.ErrInvalidRemote, "%+v", r)
	}
}

// A download that breaks off is resumed with a Range request where it
// stopped, and verified as a whole.
func TestPullResumes(t *testing.T) {
	tree := lxdTree(t, false)
	files := http.StripPrefix("/mirror", http.FileServer(http.Dir(tree)))
	var broken, ranged atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "rootfs.squashfs") {
			if r.Header.Get("Range") != "" {
				ranged.Add(1)
			} else if broken.Add(1) == 1 {
				data, _ := os.ReadFile(filepath.Join(tree, bb1, "rootfs.squashfs"))
				w.Header().Set("Content-Length", strconv.Itoa(len(data)))
				w.Write(data[:1000])
				w.(http.Flusher).Flush()
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close() // the connection drops mid-file
				return
			}
		}
		files.ServeHTTP(w, r)
	}))
	defer srv.Close()
	s := newStore(t)
	img, err := newClient(t, srv.URL+"/mirror", simplestreams.Options{}).Pull(context.Background(), s, "heldout/bb", simplestreams.PullOptions{})
	require.NoError(t, err)
	assert.Equal(t, sha(t, tree, bb1+"/lxd.tar.xz", bb1+"/rootfs.squashfs"), img.Fingerprint)
	assert.Equal(t, int64(1), broken.Load())
	assert.Equal(t, int64(1), ranged.Load(), "resumed once, with a Range request")
}
