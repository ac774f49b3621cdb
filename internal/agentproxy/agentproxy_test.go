package agentproxy

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/hostuser"
)

// echoAgent is a fake agent answering each line with "agent: " + line.
func echoAgent(t *testing.T, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
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

func openAgent(t *testing.T, path string) *hostuser.Agent {
	t.Helper()
	a, err := hostuser.OpenAgent(path, hostuser.User{Name: "me", UID: uint32(os.Getuid())})
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	return a
}

func roundTrip(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err := c.Write([]byte(msg + "\n"))
	require.NoError(t, err)
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	return line
}

// TestProxy: two clients at once reach the agent through the proxy's
// socket (0600); Close removes the socket and ends open connections.
func TestProxy(t *testing.T) {
	dir := t.TempDir()
	agentPath := filepath.Join(dir, "agent")
	echoAgent(t, agentPath)
	p, err := Listen(filepath.Join(dir, "proxy.sock"), openAgent(t, agentPath), -1, -1)
	require.NoError(t, err)

	fi, err := os.Lstat(p.Path())
	require.NoError(t, err)
	assert.Equal(t, os.ModeSocket|0o600, fi.Mode()&(os.ModeType|os.ModePerm))

	c1, err := net.Dial("unix", p.Path())
	require.NoError(t, err)
	c2, err := net.Dial("unix", p.Path())
	require.NoError(t, err)
	assert.Equal(t, "agent: one\n", roundTrip(t, c1, "one"))
	assert.Equal(t, "agent: two\n", roundTrip(t, c2, "two"))
	c2.Close()

	require.NoError(t, p.Close())
	_, err = os.Lstat(p.Path())
	assert.True(t, os.IsNotExist(err), "the socket is left: %v", err)
	require.NoError(t, c1.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = c1.Read(make([]byte, 1))
	assert.Error(t, err, "an open connection outlived Close")
}

// TestProxyAgentGone: a client whose agent went away sees its connection
// closed; the proxy keeps serving.
func TestProxyAgentGone(t *testing.T) {
	dir := t.TempDir()
	agentPath := filepath.Join(dir, "agent")
	ln, err := net.Listen("unix", agentPath)
	require.NoError(t, err)
	a := openAgent(t, agentPath)
	ln.Close()
	p, err := Listen(filepath.Join(dir, "proxy.sock"), a, -1, -1)
	require.NoError(t, err)
	defer p.Close()
	c, err := net.Dial("unix", p.Path())
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Read(make([]byte, 1))
	assert.Error(t, err)
}

// TestListenRefusesNonSocket: a file where the socket goes is not removed.
func TestListenRefusesNonSocket(t *testing.T) {
	dir := t.TempDir()
	agentPath := filepath.Join(dir, "agent")
	echoAgent(t, agentPath)
	f := filepath.Join(dir, "proxy.sock")
	require.NoError(t, os.WriteFile(f, []byte("keep"), 0o600))
	_, err := Listen(f, openAgent(t, agentPath), -1, -1)
	assert.Error(t, err)
	b, err := os.ReadFile(f)
	require.NoError(t, err)
	assert.Equal(t, "keep", string(b))
}
