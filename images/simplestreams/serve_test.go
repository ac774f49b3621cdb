package simplestreams_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/simplestreams"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// servedStore is a store with a unified image, a split one with a tarball
// rootfs and a split one with a squashfs rootfs.
func servedStore(t *testing.T) (*images.Store, map[string]*images.Image) {
	t.Helper()
	ctx := context.Background()
	s := newStore(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o644))
		return p
	}
	out := map[string]*images.Image{}
	var err error
	out["heldout/bb"], err = s.Import(ctx, []string{write("unified.tar.gz",
		gzOf(t, tarOf(t, "metadata.yaml", metadata("busybox", "1.36"), "rootfs/", "", "rootfs/etc/", "", "rootfs/etc/hostname", "bb\n")))},
		images.ImportOptions{Aliases: []string{"heldout/bb", "bb"}})
	require.NoError(t, err)
	meta := write("meta.tar.xz", xzOf(t, tarOf(t, "metadata.yaml", metadata("debian", "bookworm"))))
	out["debian/12"], err = s.Import(ctx, []string{meta, write("root.tar.xz", xzOf(t, tarOf(t, "etc/", "", "etc/debian_version", "12\n")))},
		images.ImportOptions{Aliases: []string{"debian/12"}})
	require.NoError(t, err)
	out["squash"], err = s.Import(ctx, []string{meta, write("rootfs.squashfs", append([]byte("hsqs"), make([]byte, 4000)...))},
		images.ImportOptions{Aliases: []string{"squash"}})
	require.NoError(t, err)
	return s, out
}

// stint serves its store; another store pulls every image with the same
// fingerprint, by alias or fingerprint prefix, in the format LXD reads.
func TestServeRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, imgs := servedStore(t)
	srv := httptest.NewServer(simplestreams.NewHandler(s))
	defer srv.Close()

	var ix simplestreams.Index
	getJSON(t, srv.URL+"/streams/v1/index.json", &ix)
	assert.Equal(t, "index:1.0", ix.Format)
	assert.Len(t, ix.Index["images"].Products, 3)
	var ps simplestreams.Products
	getJSON(t, srv.URL+"/streams/v1/images.json", &ps)
	assert.Equal(t, "products:1.0", ps.Format)
	assert.Equal(t, "image-downloads", ps.DataType)
	serial := regexp.MustCompile(`^\d{8}_\d{2}:\d{2}$`)
	for name, p := range ps.Products {
		assert.Equal(t, "amd64", p.Architecture, name)
		for v, ver := range p.Versions {
			assert.Regexp(t, serial, v, "version keys are YYYYMMDD_HH:MM serials")
			for _, it := range ver.Items {
				assert.Len(t, it.SHA256, 64)
				assert.Positive(t, it.Size)
			}
		}
	}

	other := newStore(t)
	c := newClient(t, srv.URL, simplestreams.Options{})
	for alias, want := range imgs {
		got, err := c.Pull(ctx, other, alias, simplestreams.PullOptions{Aliases: []string{"mine/" + alias}})
		require.NoError(t, err, alias)
		assert.Equal(t, want.Fingerprint, got.Fingerprint, alias)
		assert.Equal(t, want.Split, got.Split)
		assert.Equal(t, want.RootfsFormat, got.RootfsFormat)
	}
	third := newStore(t)
	got, err := c.Pull(ctx, third, imgs["debian/12"].Fingerprint[:12], simplestreams.PullOptions{})
	require.NoError(t, err, "by fingerprint prefix")
	assert.Equal(t, imgs["debian/12"].Fingerprint, got.Fingerprint)
}

// Nothing but the store's images is served: not its index or lock, not a
// path with "..", encoded or not, not a file through a symlink planted in
// the store; writes are refused.
func TestServeOnlyTheStore(t *testing.T) {
	s, imgs := servedStore(t)
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("SECRET"), 0o644))
	bb := imgs["heldout/bb"]
	deb := imgs["debian/12"]
	// A symlink planted as an image's rootfs, and as a directory.
	require.NoError(t, os.Remove(deb.RootfsPath()))
	require.NoError(t, os.Symlink(secret, deb.RootfsPath()))
	require.NoError(t, os.Symlink(filepath.Dir(secret), filepath.Join(s.Dir(), strings.Repeat("e", 64))))
	srv := httptest.NewServer(simplestreams.NewHandler(s))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	names := deb.ExportNames()
	for _, p := range []string{
		"/index.json", "/.lock", "/" + bb.Fingerprint,
		"/images/" + bb.Fingerprint + "/../../index.json",
		"/streams/v1/../../index.json",
		"/streams/v1/..%2f..%2findex.json",
		"/images/" + bb.Fingerprint + "%2f..%2f..%2findex.json",
		"/images/" + bb.Fingerprint + "/..%2f" + bb.Fingerprint,
		"/images/" + bb.Fingerprint + "/%2e%2e%2findex.json",
		"/images%2f" + bb.Fingerprint + "%2f" + bb.ExportNames()[0],
		"/images/" + bb.Fingerprint + "/" + bb.Fingerprint,
		"/images/" + deb.Fingerprint + "/" + names[1], // the planted symlink
		"/images/" + strings.Repeat("e", 64) + "/secret",
		"/images/" + deb.Fingerprint + "/" + deb.Fingerprint + ".rootfs",
		"/images/" + strings.ToUpper(bb.Fingerprint) + "/" + bb.ExportNames()[0],
		"//images/" + bb.Fingerprint + "/" + bb.ExportNames()[0],
	} {
		code, body := rawGet(t, addr, "GET", p)
		assert.Equal(t, 404, code, p)
		assert.NotContains(t, body, "SECRET", p)
		assert.NotContains(t, body, `"images"`, p)
	}
	code, _ := rawGet(t, addr, "GET", "/images/"+bb.Fingerprint+"/"+bb.ExportNames()[0])
	assert.Equal(t, 200, code, "the real file is served")
	code, _ = rawGet(t, addr, "PUT", "/images/"+bb.Fingerprint+"/"+bb.ExportNames()[0])
	assert.Equal(t, 405, code)
	code, _ = rawGet(t, addr, "DELETE", "/streams/v1/index.json")
	assert.Equal(t, 405, code)

	var ps simplestreams.Products
	getJSON(t, srv.URL+"/streams/v1/images.json", &ps)
	assert.Len(t, ps.Products, 2, "the image whose rootfs is a symlink is left out")
	data, err := json.Marshal(ps)
	require.NoError(t, err)
	assert.NotContains(t, string(data), deb.Fingerprint)
}

// Serve answers over TLS with the given certificate and stops with its context.
func TestServeTLS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, imgs := servedStore(t)
	pki := newPKI(t, t.TempDir())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- simplestreams.Serve(ctx, s, l, pki.cert, pki.key) }()

	pool := x509.NewCertPool()
	ca, err := os.ReadFile(pki.ca)
	require.NoError(t, err)
	require.True(t, pool.AppendCertsFromPEM(ca))
	c := newClient(t, "https://"+l.Addr().String(), simplestreams.Options{RootCAs: pool})
	got, err := c.Pull(ctx, newStore(t), "heldout/bb", simplestreams.PullOptions{})
	require.NoError(t, err)
	assert.Equal(t, imgs["heldout/bb"].Fingerprint, got.Fingerprint)

	_, err = newClient(t, "https://"+l.Addr().String(), simplestreams.Options{}).Pull(ctx, newStore(t), "heldout/bb", simplestreams.PullOptions{})
	assert.ErrorContains(t, err, "certificate", "an unknown CA is refused")

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	assert.ErrorIs(t, simplestreams.Serve(context.Background(), s, l, pki.cert, ""), images.ErrInvalidRemote)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

// rawGet sends the request line exactly as given (no client-side cleaning).
func rawGet(t *testing.T, addr, method, path string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", method, path, addr)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, path)
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, sb.String()
}
