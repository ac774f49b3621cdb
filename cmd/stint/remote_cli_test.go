package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/lxdenv"
)

// TestRemoteCLI: `stint remote add|list|remove` against a private LXD over
// its unix socket and over HTTPS with a trust token; a malformed URL and a
// name never added exit 2, a refused certificate exits 3, and nothing is
// stored for a refused remote.
func TestRemoteCLI(t *testing.T) {
	d := lxdenv.StartDaemon(t)
	root := t.TempDir()
	stint := func(args ...string) (string, string, int) {
		t.Helper()
		var out, errb bytes.Buffer
		code := run(append([]string{"--root", root}, args...), &out, &errb)
		return out.String(), errb.String(), code
	}

	out, errs, code := stint("remote", "add", "l", "unix://"+d.Socket)
	require.Equal(t, 0, code, "%s%s", out, errs)
	assert.Contains(t, out, "remote l added: unix://"+d.Socket)

	out, errs, code = stint("remote", "add", "h", d.URL, "--token", d.TrustToken(t, "stint-cli"))
	require.Equal(t, 0, code, "%s%s", out, errs)
	assert.Contains(t, out, "remote h added: "+d.URL)

	out, errs, code = stint("remote", "add", "mirror", "http://127.0.0.1:8000/mirror/", "--protocol", "simplestreams")
	require.Equal(t, 0, code, "%s%s", out, errs)

	t.Run("refusals", func(t *testing.T) {
		cases := []struct {
			args []string
			code int
			want string
		}{
			{[]string{"remote", "add", "bad", "http://" + d.URL[len("https://"):]}, 2, `remote "bad": invalid remote url`},
			{[]string{"remote", "add", "bad", "unix://relative/sock"}, 2, "invalid remote url"},
			{[]string{"remote", "add", "bad/name", "unix://" + d.Socket}, 2, "invalid remote name"},
			{[]string{"remote", "add", "l", "unix://" + d.Socket}, 2, "remote already exists"},
			{[]string{"remote", "add", "lan", "http://10.0.0.1:8000", "--protocol", "oci"}, 2, "invalid remote url"},
			{[]string{"remote", "remove", "nosuch"}, 2, `remote "nosuch": no such remote`},
			{[]string{"--remote", "nosuch", "ps"}, 2, `remote "nosuch": no such remote`},
			{[]string{"remote", "remove", "images"}, 2, "preset remote"},
			{[]string{"remote", "add", "nocert", d.URL}, 3, `remote "nocert": add: server certificate not trusted`},
			{[]string{"remote", "add", "nosock", "unix://" + d.Dir + "/no.socket"}, 3, "remote unreachable"},
		}
		for _, c := range cases {
			out, errs, code := stint(c.args...)
			assert.Equal(t, c.code, code, "%v: %s%s", c.args, out, errs)
			assert.Contains(t, errs, c.want, "%v", c.args)
		}
	})

	out, _, code = stint("remote", "list")
	require.Equal(t, 0, code)
	assert.Regexp(t, `NAME\s+URL\s+PROTOCOL`, out)
	assert.Regexp(t, `(?m)^h\s+`+d.URL+`\s+lxd$`, out)
	assert.Regexp(t, `(?m)^images \(preset\)\s+https://images.linuxcontainers.org\s+simplestreams$`, out)

	out, _, code = stint("--json", "remote", "list")
	require.Equal(t, 0, code)
	var list []struct{ Name, URL, Protocol string }
	require.NoError(t, json.Unmarshal([]byte(out), &list), out)
	var names []string
	for _, r := range list {
		names = append(names, r.Name+" "+r.Protocol)
	}
	assert.Equal(t, []string{"h lxd", "images simplestreams", "l lxd", "mirror simplestreams", "ubuntu simplestreams"}, names)

	out, errs, code = stint("remote", "remove", "h")
	require.Equal(t, 0, code, "%s%s", out, errs)
	assert.Contains(t, out, "remote h removed")
	_, errs, code = stint("remote", "remove", "h")
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, "no such remote")
	out, _, _ = stint("remote", "ls")
	assert.NotContains(t, out, d.URL)
}
