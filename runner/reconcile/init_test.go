package reconcile

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/spec"
)

func TestRuntimeName(t *testing.T) {
	for _, tt := range []struct{ set, name, want string }{
		{"alpha", "web", "alpha.web"},
		{"my.project", "web", "my-project.web"},
		{"weird set/name", "db", "weird-set-name.db"},
		{strings.Repeat("s", 70), "web", strings.Repeat("s", 60) + ".web"},
	} {
		got := RuntimeName(tt.set, tt.name)
		assert.Equal(t, tt.want, got)
		assert.LessOrEqual(t, len(got), 64)
		assert.Equal(t, tt.name, specName(got))
	}
}

// TestInitScriptRunsAsWritten runs the generated script with the host's sh,
// the real test of its quoting: every word must reach the command intact.
func TestInitScriptRunsAsWritten(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh") // every Debian host has one; not an integration gate
	}
	c := spec.Container{
		Name:    "web",
		Command: []string{"printf", `%s|`, "daemon off;", "it's", `"quoted"`, "$HOME", "a  b", ""},
		Env:     map[string]string{"GREETING": "hello world", "Q": "it's"},
	}
	script, err := InitScript(c)
	require.NoError(t, err)
	// On the host, busybox lives elsewhere: point the script at env(1).
	script = strings.ReplaceAll(script, "'"+helperBusybox+"' 'env'", "'env'")
	path := filepath.Join(t.TempDir(), "run.sh")
	require.NoError(t, os.WriteFile(path, []byte(script), 0o600))
	out, err := exec.Command("sh", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, `daemon off;|it's|"quoted"|$HOME|a  b||`, string(out))

	c.Command = []string{"sh", "-c", `printf '%s/%s/%s' "$GREETING" "$Q" "$PATH"`}
	script, err = InitScript(c)
	require.NoError(t, err)
	script = strings.ReplaceAll(script, "'"+helperBusybox+"' 'env'", "'env'")
	require.NoError(t, os.WriteFile(path, []byte(script), 0o600))
	out, err = exec.Command("sh", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "hello world/it's/"+defaultPath, string(out))
}

func TestInitScriptBootsImageInit(t *testing.T) {
	script, err := InitScript(spec.Container{Name: "box", Env: map[string]string{"PATH": "/bin"}})
	require.NoError(t, err)
	assert.Equal(t, "# written by stint: the program of long-lived container box\n"+
		"exec '/.stint/busybox' 'env' 'PATH=/bin' '/sbin/init'\n", script)
	_, err = InitScript(spec.Container{Name: "x", Command: []string{"a\x00b"}})
	assert.Error(t, err)
}

func TestInitKeys(t *testing.T) {
	k := InitKeys(spec.Container{Name: "web", Command: []string{"nginx"}}, "/r/logs/p.web.log")
	assert.Equal(t, "/.stint/init --name web --quiet -- /.stint/busybox sh /.stint/run", k["lxc.init.cmd"])
	assert.Equal(t, "/r/logs/p.web.log", k["lxc.console.logfile"])
	assert.Equal(t, "", k["lxc.console.path"])
	k = InitKeys(spec.Container{Name: "box"}, "/l")
	assert.Equal(t, "/.stint/busybox sh /.stint/run", k["lxc.init.cmd"], "the image's init must be PID 1 itself")
}
