package images

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRemoteValidate(t *testing.T) {
	for _, tt := range []struct {
		r  Remote
		ok bool
	}{
		{Remote{Name: "ss", URL: "http://127.0.0.1:8000", Protocol: ProtocolSimplestreams}, true},
		{Remote{Name: "ss", URL: "http://127.0.0.1:8000/mirror/", Protocol: ProtocolSimplestreams}, true},
		{Remote{Name: "ss", URL: "http://[::1]:8000", Protocol: ProtocolSimplestreams}, true},
		{Remote{Name: "ss", URL: "http://localhost:8000", Protocol: ProtocolSimplestreams}, true},
		{Remote{Name: "hub", URL: "https://registry.example", Protocol: ProtocolOCI}, true},
		{Remote{Name: "lan", URL: "http://10.0.0.1:8000", Protocol: ProtocolSimplestreams, Insecure: true}, true},
		{Remote{Name: "lan", URL: "http://10.0.0.1:8000", Protocol: ProtocolSimplestreams}, false},
		{Remote{Name: "lan", URL: "http://127.0.0.1.example:8000", Protocol: ProtocolSimplestreams}, false},
		{Remote{Name: "ss", URL: "ftp://127.0.0.1", Protocol: ProtocolSimplestreams}, false},
		{Remote{Name: "ss", URL: "127.0.0.1:8000", Protocol: ProtocolSimplestreams}, false},
		{Remote{Name: "ss", URL: "https://user:pw@127.0.0.1", Protocol: ProtocolSimplestreams}, false},
		{Remote{Name: "ss", URL: "https://127.0.0.1/?x=1", Protocol: ProtocolSimplestreams}, false},
		{Remote{Name: "ss", URL: "https://127.0.0.1/a/../b", Protocol: ProtocolSimplestreams}, false},
		{Remote{Name: "ss", URL: "https:///path", Protocol: ProtocolSimplestreams}, false},
		{Remote{Name: "ss", URL: "https://127.0.0.1", Protocol: "lxd"}, false},
		{Remote{Name: "", URL: "https://127.0.0.1", Protocol: ProtocolOCI}, false},
		{Remote{Name: "a:b", URL: "https://127.0.0.1", Protocol: ProtocolOCI}, false},
		{Remote{Name: "a b", URL: "https://127.0.0.1", Protocol: ProtocolOCI}, false},
	} {
		err := tt.r.Validate()
		if tt.ok {
			assert.NoError(t, err, "%+v", tt.r)
		} else {
			assert.ErrorIs(t, err, ErrInvalidRemote, "%+v", tt.r)
		}
	}
	u, err := Remote{Name: "ss", URL: "http://127.0.0.1:8000/mirror/", Protocol: ProtocolSimplestreams}.BaseURL()
	assert.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:8000/mirror", u.String())
}

// Aliases may have '/' (as LXD's do), but no empty, "." or ".." segment.
func TestValidAlias(t *testing.T) {
	for _, ok := range []string{"bb", "heldout/bb", "debian/12/cloud", "alpine/3.20", "a.b", "ümlaut"} {
		assert.NoError(t, ValidAlias(ok), ok)
	}
	for _, bad := range []string{"", "/bb", "bb/", "a//b", "a/../b", "..", ".", "a/./b", "a b", "a\tb", "a\x00b", "a=b", "x:y", "a\nb", "\xff", string(make([]byte, 256))} {
		assert.ErrorIs(t, ValidAlias(bad), ErrInvalidAlias, "%q", bad)
	}
	s := newStore(t)
	img, err := s.Import(context.Background(), []string{writeFile(t, t.TempDir(), "i", mkTar(t, unifiedEnts(testMeta)))}, ImportOptions{Aliases: []string{"heldout/bb"}})
	assert.NoError(t, err)
	assert.NoError(t, s.AddAlias(img.Fingerprint, "debian/12/cloud"))
	assert.ErrorIs(t, s.AddAlias(img.Fingerprint, "a/../b"), ErrInvalidAlias)
	got, err := s.Resolve("debian/12/cloud")
	assert.NoError(t, err)
	assert.Equal(t, []string{"debian/12/cloud", "heldout/bb"}, got.Aliases)
}
