package remote_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/stintdev/stint/internal/lxdenv"
	"github.com/stintdev/stint/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostErr asserts err is a *remote.Error (exit 3) naming the remote and
// wrapping want.
func hostErr(t *testing.T, err error, name string, want error) {
	t.Helper()
	t.Log(err)
	var he *remote.Error
	require.ErrorAs(t, err, &he)
	assert.Equal(t, 3, he.ExitCode())
	assert.ErrorIs(t, err, want)
	assert.Contains(t, err.Error(), `remote "`+name+`"`)
}

// TestRemoteLXD: one private daemon, reached over its unix socket and
// over HTTPS with a trust token; the refusals (wrong token, untrusted
// certificate, a client the server doesn't trust, nobody listening) are
// exit-3 errors naming the remote, and nothing is stored for them.
func TestRemoteLXD(t *testing.T) {
	d := lxdenv.StartDaemon(t)
	ctx := context.Background()
	s, err := remote.Open(t.TempDir())
	require.NoError(t, err)

	t.Run("unix", func(t *testing.T) {
		r, err := s.Add(ctx, "l", "unix://"+d.Socket, remote.AddOptions{})
		require.NoError(t, err)
		assert.True(t, r.Unix())
		_, c, err := s.ConnectName(ctx, "l")
		require.NoError(t, err)
		defer c.Disconnect()
		srv, _, err := c.GetServer()
		require.NoError(t, err)
		assert.Equal(t, "trusted", srv.Auth)
	})

	t.Run("untrusted certificate", func(t *testing.T) {
		_, err := s.Add(ctx, "nocert", d.URL, remote.AddOptions{})
		hostErr(t, err, "nocert", remote.ErrUntrustedCertificate)
		assert.Contains(t, err.Error(), "--accept-certificate")
	})

	t.Run("client not trusted", func(t *testing.T) {
		_, err := s.Add(ctx, "notoken", d.URL, remote.AddOptions{AcceptCertificate: true})
		hostErr(t, err, "notoken", remote.ErrNotTrusted)
	})

	t.Run("wrong token", func(t *testing.T) {
		tok := d.TrustToken(t, "stint-wrong")
		b, err := base64.StdEncoding.DecodeString(tok)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		m["secret"] = strings.Repeat("0", 64)
		b, err = json.Marshal(m)
		require.NoError(t, err)
		_, err = s.Add(ctx, "wrong", d.URL, remote.AddOptions{Token: base64.StdEncoding.EncodeToString(b)})
		hostErr(t, err, "wrong", remote.ErrTokenRejected)
		_, err = s.Add(ctx, "garbage", d.URL, remote.AddOptions{Token: "not-a-token"})
		hostErr(t, err, "garbage", remote.ErrTokenRejected)
	})

	t.Run("unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		l.Close() // nobody listens there now
		_, err = s.Add(ctx, "gone", "https://"+addr, remote.AddOptions{AcceptCertificate: true})
		hostErr(t, err, "gone", remote.ErrUnreachable)
		_, err = s.Add(ctx, "nosock", "unix://"+d.Dir+"/no.socket", remote.AddOptions{})
		hostErr(t, err, "nosock", remote.ErrUnreachable)
	})

	t.Run("https with token", func(t *testing.T) {
		r, err := s.Add(ctx, "h", d.URL, remote.AddOptions{Token: d.TrustToken(t, "stint-test")})
		require.NoError(t, err)
		assert.Contains(t, r.Certificate, "BEGIN CERTIFICATE")
		_, c, err := s.ConnectName(ctx, "h")
		require.NoError(t, err)
		defer c.Disconnect()
		srv, _, err := c.GetServer()
		require.NoError(t, err)
		assert.Equal(t, "trusted", srv.Auth)
		// Trusted now: adding the same server again needs no token.
		_, err = s.Add(ctx, "h2", d.URL, remote.AddOptions{AcceptCertificate: true})
		require.NoError(t, err)
	})

	list, err := s.List()
	require.NoError(t, err)
	var names []string
	for _, r := range list {
		names = append(names, r.Name)
	}
	assert.Equal(t, []string{"h", "h2", "images", "l", "ubuntu"}, names, "nothing stored for a refused remote")
}
