package lxcrt

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner/container"
)

// TestInitScriptRunsAsWritten runs the generated script with the host's sh,
// the real test of its quoting: every word must reach the command intact.
func TestInitScriptRunsAsWritten(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh") // every Debian host has one; not an integration gate
	}
	c := container.Init{
		Kind:    container.InitCommand,
		Command: []string{"printf", `%s|`, "daemon off;", "it's", `"quoted"`, "$HOME", "a  b", ""},
		Env:     []string{"GREETING=hello world", "Q=it's"},
	}
	script, err := InitScript("web", c)
	require.NoError(t, err)
	// On the host, busybox lives elsewhere: point the script at env(1).
	script = strings.ReplaceAll(script, "'"+busyboxPath+"' 'env'", "'env'")
	path := filepath.Join(t.TempDir(), "run.sh")
	require.NoError(t, os.WriteFile(path, []byte(script), 0o600))
	out, err := exec.Command("sh", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, `daemon off;|it's|"quoted"|$HOME|a  b||`, string(out))

	c.Command = []string{"sh", "-c", `printf '%s/%s/%s' "$GREETING" "$Q" "$PATH"`}
	script, err = InitScript("web", c)
	require.NoError(t, err)
	script = strings.ReplaceAll(script, "'"+busyboxPath+"' 'env'", "'env'")
	require.NoError(t, os.WriteFile(path, []byte(script), 0o600))
	out, err = exec.Command("sh", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "hello world/it's/"+defaultPath, string(out))
}

func TestInitScriptBootsImageInit(t *testing.T) {
	script, err := InitScript("box", container.Init{Kind: container.InitBoot, Env: []string{"PATH=/bin"}})
	require.NoError(t, err)
	assert.Equal(t, "# written by stint: the program of long-lived container box\n"+
		"exec '/.stint/busybox' 'env' 'PATH=/bin' '/sbin/init'\n", script)
	_, err = InitScript("x", container.Init{Kind: container.InitCommand, Command: []string{"a\x00b"}})
	assert.Error(t, err)
}
