package hostuser

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeProc is one process of a fake /proc.
type fakeProc struct {
	pid, ppid int
	comm      string
	uid       int
	env       []string
}

func writeProc(t *testing.T, procs []fakeProc) string {
	t.Helper()
	dir := t.TempDir()
	for i, p := range procs {
		name := fmt.Sprint(p.pid)
		if i == 0 {
			name = "self"
		}
		d := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(d, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(d, "stat"), fmt.Appendf(nil, "%d (%s) S %d 1 1 0 -1", p.pid, p.comm, p.ppid), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(d, "status"), fmt.Appendf(nil, "Name:\t%s\nUid:\t%d\t%d\t%d\t%d\n", p.comm, p.uid, p.uid, p.uid, p.uid), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(d, "environ"), []byte(strings.Join(p.env, "\x00")+"\x00"), 0o644))
	}
	return dir
}

// TestAncestorAgent: sudo drops SSH_AUTH_SOCK; the shell that ran it (the
// nearest ancestor of the user's with the variable) still has it.
func TestAncestorAgent(t *testing.T) {
	stint := fakeProc{pid: 10, ppid: 9, comm: "stint", uid: 0, env: []string{"PATH=/usr/bin"}}
	sudo := fakeProc{pid: 9, ppid: 8, comm: "sudo", uid: 4242, env: []string{"SSH_AUTH_SOCK=/tmp/sudo-saw-this"}}
	for _, c := range []struct {
		name  string
		procs []fakeProc
		want  string
	}{
		{"sudo from a shell", []fakeProc{stint, {9, 8, "sudo", 0, nil},
			{8, 1, "bash", 4242, []string{"HOME=/home/dev", "SSH_AUTH_SOCK=/tmp/ssh-x/agent.7"}}}, "/tmp/ssh-x/agent.7"},
		{"the nearest with the variable", []fakeProc{stint, {9, 8, "sudo", 0, nil},
			{8, 7, "bash", 4242, []string{"HOME=/home/dev"}},
			{7, 1, "sshd", 4242, []string{"SSH_AUTH_SOCK=/tmp/ssh-y/agent.6"}}}, "/tmp/ssh-y/agent.6"},
		{"another user's is never taken", []fakeProc{stint, {9, 8, "sudo", 0, nil},
			{8, 1, "bash", 1000, []string{"SSH_AUTH_SOCK=/tmp/ssh-z/agent.1"}}}, ""},
		{"a command name with parentheses", []fakeProc{stint, {9, 8, "su (x) y", 0, nil},
			{8, 1, "bash", 4242, []string{"SSH_AUTH_SOCK=/run/user/4242/openssh_agent"}}}, "/run/user/4242/openssh_agent"},
		{"sudo itself (real uid the user's) has it", []fakeProc{stint, sudo}, "/tmp/sudo-saw-this"},
		{"no parent", []fakeProc{{10, 1, "stint", 0, nil}}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, ancestorAgent(writeProc(t, c.procs), 4242))
		})
	}
}

// TestOpenAgent: a socket of the user's is accepted and connects through
// its descriptor; anyone else's socket, a file, a link, a relative path are
// refused with ErrNoAgent.
func TestOpenAgent(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer ln.Close()
	me := dev
	me.UID = uint32(os.Getuid())
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(sock, link))

	a, err := OpenAgent(sock, me)
	require.NoError(t, err)
	defer a.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			_, _ = c.Write([]byte("agent"))
			c.Close()
		}
	}()
	c, err := net.Dial("unix", a.ConnectPath())
	require.NoError(t, err)
	b := make([]byte, 5)
	_, err = c.Read(b)
	require.NoError(t, err)
	assert.Equal(t, "agent", string(b))
	c.Close()

	other := me
	other.UID = me.UID + 1
	for _, bad := range []struct {
		path string
		u    User
	}{{sock, other}, {file, me}, {link, me}, {"agent.sock", me}, {filepath.Join(dir, "gone"), me}} {
		_, err := OpenAgent(bad.path, bad.u)
		assert.True(t, errors.Is(err, ErrNoAgent), "%s uid %d: %v", bad.path, bad.u.UID, err)
	}
}

// TestFindAgentEnv: SSH_AUTH_SOCK in stint's own environment wins; none
// anywhere is ErrNoAgent.
func TestFindAgentEnv(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer ln.Close()
	me := dev
	me.UID = uint32(os.Getuid())
	a, err := FindAgent(Options{Getenv: func(k string) string {
		return map[string]string{"SSH_AUTH_SOCK": sock}[k]
	}, Proc: writeProc(t, []fakeProc{{10, 1, "stint", 0, nil}})}, me)
	require.NoError(t, err)
	assert.Equal(t, sock, a.Path)
	a.Close()
	_, err = FindAgent(Options{Getenv: func(string) string { return "" }, Proc: writeProc(t, []fakeProc{{10, 1, "stint", 0, nil}})}, me)
	assert.ErrorIs(t, err, ErrNoAgent)
}
