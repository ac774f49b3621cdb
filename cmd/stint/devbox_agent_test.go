package main

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// agentClient is a static program that connects to $SSH_AUTH_SOCK, says
// "ping" and prints the answer: busybox has no client for a unix socket.
const agentClient = `package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
)

func main() {
	c, err := net.Dial("unix", os.Getenv("SSH_AUTH_SOCK"))
	if err != nil {
		fmt.Println("dial:", err)
		os.Exit(1)
	}
	fmt.Fprintln(c, "ping")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fmt.Println("read:", err)
		os.Exit(1)
	}
	fmt.Print(line)
}
`

// buildAgentClient builds agentClient into a directory of its own.
func buildAgentClient(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(agentClient), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module agentclient\n\ngo 1.22\n"), 0o644))
	build := exec.Command(goTool(), "build", "-o", "agentclient", ".")
	build.Dir, build.Env = dir, append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))
	return dir
}

// fakeAgent listens at path as the test user and answers each line with
// "agent: " and the line.
func fakeAgent(t *testing.T, path string, uid, gid int) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	require.NoError(t, os.Chown(path, uid, gid))
	require.NoError(t, os.Chmod(path, 0o600))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					_, _ = c.Write([]byte("agent: " + sc.Text() + "\n"))
				}
			}()
		}
	}()
}

// TestDevBoxSSHAgent: with ssh_agent, `stint shell` hands the user's agent
// (theirs, at $SSH_AUTH_SOCK) to the shell through a socket of its own;
// without an agent, a warning and the command runs all the same.
func TestDevBoxSSHAgent(t *testing.T) {
	client := buildAgentClient(t)
	spec := strings.Replace(devboxSpec, `home = "persist"`, "home = \"persist\"\nssh_agent = true", 1)
	spec = strings.Replace(spec, `mount = [{ source = ".", target = "PROJECT" }]`,
		`mount = [{ source = ".", target = "PROJECT" }, { source = "`+client+`", target = "/tools", readonly = true }]`, 1)
	d := newDevbox(t, spec)

	out, errs, code := d.stint("shell", "dev", "--", "sh", "-c", "test -z \"$SSH_AUTH_SOCK\" && echo none")
	require.Equal(t, 0, code, "%s%s", out, errs)
	assert.Equal(t, "none\n", out)
	assert.Contains(t, errs, "warning: ssh_agent")

	agentDir := filepath.Join(filepath.Dir(d.project), "agent")
	require.NoError(t, os.Mkdir(agentDir, 0o700))
	require.NoError(t, os.Chown(agentDir, d.user.UID, d.user.GID))
	fakeAgent(t, filepath.Join(agentDir, "agent.sock"), d.user.UID, d.user.GID)
	d.extraEnv = []string{"SSH_AUTH_SOCK=" + filepath.Join(agentDir, "agent.sock")}
	out, errs, code = d.stint("shell", "dev", "--", "sh", "-c", "echo $SSH_AUTH_SOCK; /tools/agentclient")
	require.Equal(t, 0, code, "%s%s", out, errs)
	assert.Regexp(t, `^/\.stint/agent/\d+\.sock\nagent: ping\n$`, out)
	assert.NotContains(t, errs, "warning")

	// Someone else's socket (root's) is never handed over.
	require.NoError(t, os.Chown(filepath.Join(agentDir, "agent.sock"), 0, 0))
	out, errs, code = d.stint("shell", "dev", "--", "sh", "-c", "test -z \"$SSH_AUTH_SOCK\" && echo none")
	require.Equal(t, 0, code, "%s%s", out, errs)
	assert.Equal(t, "none\n", out)
	assert.Contains(t, errs, "not a socket of uid")
}
