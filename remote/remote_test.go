package remote

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNormalizeURL(t *testing.T) {
	for _, tc := range []struct {
		raw, want string
		p         Protocol
		insecure  bool
	}{
		{"unix:///var/lib/lxd/unix.socket", "unix:///var/lib/lxd/unix.socket", ProtocolLXD, false},
		{"https://10.0.0.1:8443", "https://10.0.0.1:8443", ProtocolLXD, false},
		{"https://lxd.example", "https://lxd.example:8443", ProtocolLXD, false},
		{"https://[::1]:9443/", "https://[::1]:9443", ProtocolLXD, false},
		{"http://127.0.0.1:8000/mirror/", "http://127.0.0.1:8000/mirror", ProtocolSimplestreams, false},
		{"https://images.example/streams", "https://images.example/streams", ProtocolSimplestreams, false},
		{"http://10.1.2.3:5000", "http://10.1.2.3:5000", ProtocolOCI, true},
	} {
		got, err := NormalizeURL(tc.raw, tc.p, tc.insecure)
		if assert.NoError(t, err, tc.raw) {
			assert.Equal(t, tc.want, got, tc.raw)
		}
	}
	for _, tc := range []struct {
		raw string
		p   Protocol
	}{
		{"unix://host/var/lib/lxd/unix.socket", ProtocolLXD},
		{"unix://relative", ProtocolLXD},
		{"unix:///a/../b", ProtocolLXD},
		{"http://127.0.0.1:8443", ProtocolLXD},
		{"https://user:pw@host:8443", ProtocolLXD},
		{"https://host:8443/path", ProtocolLXD},
		{"https://host:notaport", ProtocolLXD},
		{"https://:8443", ProtocolLXD},
		{"ftp://host", ProtocolSimplestreams},
		{"http://10.1.2.3:5000", ProtocolOCI},
		{"https://host/x?y=1", ProtocolSimplestreams},
		{"%zz", ProtocolLXD},
		{"", ProtocolLXD},
	} {
		_, err := NormalizeURL(tc.raw, tc.p, false)
		assert.ErrorIs(t, err, ErrBadURL, tc.raw)
	}
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"l", "lab-1", "a.b_c", "X9"} {
		assert.NoError(t, ValidName(ok), ok)
	}
	for _, bad := range []string{"", "-x", "a:b", "a/b", "a b", string(make([]byte, 64))} {
		err := ValidName(bad)
		var ue *UsageError
		require.ErrorAs(t, err, &ue, bad)
		assert.Equal(t, 2, ue.ExitCode())
		assert.ErrorIs(t, err, ErrBadName)
	}
}

// TestStoreImageRemotes: image remotes are stored without being contacted
// (the probe hook is called when given), listed with the presets, removed;
// names are unique, presets fixed; the files are private.
func TestStoreImageRemotes(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := Open(root)
	require.NoError(t, err)

	probed := 0
	r, err := s.Add(ctx, "ss", "http://127.0.0.1:8000/mirror/", AddOptions{Protocol: ProtocolSimplestreams,
		Probe: func(_ context.Context, r Remote) error { probed++; return nil }})
	require.NoError(t, err)
	assert.Equal(t, Remote{Name: "ss", URL: "http://127.0.0.1:8000/mirror", Protocol: ProtocolSimplestreams}, r)
	assert.Equal(t, 1, probed)
	_, err = s.Add(ctx, "hub", "https://registry.example", AddOptions{Protocol: ProtocolOCI})
	require.NoError(t, err)

	_, err = s.Add(ctx, "bad", "https://registry.example", AddOptions{Protocol: ProtocolOCI,
		Probe: func(context.Context, Remote) error { return errors.New("no registry there") }})
	var he *Error
	require.ErrorAs(t, err, &he)
	assert.Equal(t, 3, he.ExitCode())
	assert.Contains(t, err.Error(), `remote "bad"`)

	list, err := s.List()
	require.NoError(t, err)
	var names []string
	for _, r := range list {
		names = append(names, r.Name)
	}
	assert.Equal(t, []string{"hub", "images", "ss", "ubuntu"}, names)

	for _, name := range []string{"ss", "images"} {
		_, err = s.Add(ctx, name, "https://x.example", AddOptions{Protocol: ProtocolOCI})
		assert.ErrorIs(t, err, ErrExists, name)
	}
	_, err = s.Add(ctx, "x", "https://x.example", AddOptions{Protocol: "ftp"})
	assert.ErrorIs(t, err, ErrBadProtocol)
	_, err = s.Add(ctx, "x", "unix:relative", AddOptions{})
	var ue *UsageError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, 2, ue.ExitCode())

	got, err := s.Get("images")
	require.NoError(t, err)
	assert.True(t, got.Preset)
	_, err = s.Get("nope")
	require.ErrorAs(t, err, &ue)
	assert.ErrorIs(t, err, ErrUnknown)
	_, _, err = s.ConnectName(ctx, "ss")
	assert.ErrorIs(t, err, ErrNotRuntime)
	assert.ErrorIs(t, s.Remove("images"), ErrPreset)
	assert.ErrorIs(t, s.Remove("nope"), ErrUnknown)
	require.NoError(t, s.Remove("ss"))
	_, err = s.Get("ss")
	assert.ErrorIs(t, err, ErrUnknown)

	fi, err := os.Stat(filepath.Join(root, "remotes", "remotes.json"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	fi, err = os.Stat(filepath.Join(root, "remotes"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
}

// TestClientCert: generated once, 0600, reused.
func TestClientCert(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	c1, k1, err := s.clientCert()
	require.NoError(t, err)
	c2, k2, err := s.clientCert()
	require.NoError(t, err)
	assert.Equal(t, c1, c2)
	assert.Equal(t, k1, k2)
	for _, f := range []string{certFile, keyFile} {
		fi, err := os.Stat(filepath.Join(s.Dir(), f))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}
}

func TestWriteList(t *testing.T) {
	rs := []Remote{{Name: "lab", URL: "https://10.0.0.1:8443", Protocol: ProtocolLXD, Certificate: "PEM"}, Presets[0]}
	var b strings.Builder
	require.NoError(t, WriteList(&b, rs, false))
	assert.Equal(t, "NAME             URL                                 PROTOCOL\n"+
		"lab              https://10.0.0.1:8443               lxd\n"+
		"images (preset)  https://images.linuxcontainers.org  simplestreams\n", b.String())
	b.Reset()
	require.NoError(t, WriteList(&b, rs, true))
	assert.JSONEq(t, `[{"name":"lab","url":"https://10.0.0.1:8443","protocol":"lxd"},
		{"name":"images","url":"https://images.linuxcontainers.org","protocol":"simplestreams","preset":true}]`, b.String())
}

// TestStoreConcurrentAdds: writers under the lock lose nothing.
func TestStoreConcurrentAdds(t *testing.T) {
	root := t.TempDir()
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			s, err := Open(root) // a store of its own, as another process would
			if err == nil {
				_, err = s.Add(context.Background(), "r"+strconv.Itoa(i), "https://img.example", AddOptions{Protocol: ProtocolSimplestreams})
			}
			errs <- err
		}()
	}
	for range 16 {
		require.NoError(t, <-errs)
	}
	s, err := Open(root)
	require.NoError(t, err)
	list, err := s.List()
	require.NoError(t, err)
	assert.Len(t, list, 16+len(Presets))
}
