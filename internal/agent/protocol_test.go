package agent

import (
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeAgent answers the client's requests with the given reports, one per
// request after a Ready, and records the requests with how many
// descriptors came along; then it ends the socket.
func fakeAgent(t *testing.T, reports ...Report) (*Client, <-chan request) {
	t.Helper()
	rt, ag, err := Socketpair()
	require.NoError(t, err)
	got := make(chan request, 16)
	go func() {
		defer ag.Close()
		c := newConn(int(ag.Fd()))
		_ = c.send(Report{Kind: KindReady, Pid: 1})
		for _, r := range reports {
			var req request
			fds, err := c.recv(&req.Request)
			if err != nil {
				return
			}
			req.fds = fds
			closeAll(fds)
			got <- req
			_ = c.send(r)
		}
		close(got)
	}()
	t.Cleanup(func() { rt.Close() })
	return NewClient(rt), got
}

// stdio is /dev/null three times, for Run.
func stdio(t *testing.T) (*os.File, *os.File, *os.File) {
	t.Helper()
	f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f, f, f
}

func TestClientRoundTrip(t *testing.T) {
	c, got := fakeAgent(t,
		Report{Kind: KindExited, Status: 3 << 8},
		Report{Kind: KindExited, Status: int(syscall.SIGKILL)},
		Report{Kind: KindFailed, Error: "no such file"},
		Report{Kind: KindReaped, Reaped: 2},
		Report{Kind: KindBye},
	)
	pid, err := c.Ready()
	require.NoError(t, err)
	assert.Equal(t, 1, pid)

	in, out, errw := stdio(t)
	cmd := Command{Argv: []string{"/bin/sh", "-c", "exit 3"}, Env: []string{"A=1"}, UID: 1000, GID: 1000, Groups: []int{27}, Cwd: "/src"}
	ws, err := c.Run(cmd, in, out, errw)
	require.NoError(t, err)
	assert.Equal(t, 3, ws.ExitStatus())
	req := <-got
	assert.Equal(t, Request{Op: OpRun, Command: cmd}, req.Request, "the command reaches the agent whole")
	assert.Len(t, req.fds, 3, "with its stdin, stdout and stderr")

	ws, err = c.Run(Command{Argv: []string{"x"}}, in, out, errw)
	require.NoError(t, err)
	assert.True(t, ws.Signaled())
	assert.Equal(t, syscall.SIGKILL, ws.Signal())
	<-got

	_, err = c.Run(Command{Argv: []string{"/nope"}}, in, out, errw)
	var se *StartError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "/nope", se.Argv0)
	assert.Contains(t, err.Error(), "no such file")
	<-got

	n, err := c.Reap()
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	req = <-got
	assert.Equal(t, OpReap, req.Op)
	assert.Empty(t, req.fds)

	require.NoError(t, c.Exit())
	assert.Equal(t, OpExit, (<-got).Op)
}

func TestClientAgentGone(t *testing.T) {
	c, _ := fakeAgent(t) // Ready, then the reports end
	_, err := c.Ready()
	require.NoError(t, err)
	in, out, errw := stdio(t)
	_, err = c.Run(Command{Argv: []string{"/bin/true"}}, in, out, errw)
	assert.ErrorIs(t, err, ErrGone)
}

func TestClientWrongReport(t *testing.T) {
	c, _ := fakeAgent(t, Report{Kind: KindReaped})
	_, err := c.Ready()
	require.NoError(t, err)
	in, out, errw := stdio(t)
	_, err = c.Run(Command{Argv: []string{"/bin/true"}}, in, out, errw)
	assert.ErrorIs(t, err, ErrProtocol)

	c, _ = fakeAgent(t, Report{Kind: KindError, Error: "a command is running"})
	_, _ = c.Ready()
	_, err = c.Reap()
	assert.ErrorIs(t, err, ErrProtocol)
	assert.Contains(t, err.Error(), "a command is running")
}

func TestClientRefusesEmptyCommand(t *testing.T) {
	c, _ := fakeAgent(t)
	in, out, errw := stdio(t)
	_, err := c.Run(Command{}, in, out, errw)
	assert.Error(t, err)
	_, err = c.Run(Command{Argv: []string{"/bin/true"}}, nil, nil, nil)
	assert.Error(t, err)
}

// The wire format is part of the contract between two binaries that may be
// built apart (stint and the stint-agent it bind-mounts): keep it stable.
func TestWireFormat(t *testing.T) {
	b, err := json.Marshal(Request{Op: OpRun, Command: Command{Argv: []string{"/bin/sh", "-c", "true"}, Env: []string{"A=1"}, UID: 1, GID: 2, Cwd: "/w"}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"op":"run","argv":["/bin/sh","-c","true"],"env":["A=1"],"uid":1,"gid":2,"cwd":"/w"}`, string(b))
	var r Report
	require.NoError(t, json.NewDecoder(strings.NewReader(`{"kind":"exited","status":256}`)).Decode(&r))
	assert.Equal(t, Report{Kind: KindExited, Status: 256}, r)
}

// A connection's buffer starts small and grows to the message: a command
// with a large environment arrives whole with its descriptors, and one
// over MaxMessage is refused, its descriptors closed.
func TestConnBufferGrows(t *testing.T) {
	a, b, err := Socketpair()
	require.NoError(t, err)
	defer a.Close()
	defer b.Close()
	tx, rx := newConn(int(a.Fd())), newConn(int(b.Fd()))
	require.Len(t, rx.buf, initialBuf)
	f, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer f.Close()
	sizes := []int{100, initialBuf * 3, 150 << 10}
	if os.Geteuid() == 0 { // SO_SNDBUFFORCE: a send buffer past net.core.wmem_max
		sizes = append(sizes, MaxMessage-100)
	}
	for _, size := range sizes {
		want := Command{Argv: []string{"/bin/true"}, Env: []string{"BIG=" + strings.Repeat("x", size-80)}}
		done := make(chan error, 1)
		go func() { done <- tx.send(want, int(f.Fd())) }()
		var got Command
		fds, err := rx.recv(&got)
		require.NoError(t, err, "size %d", size)
		require.NoError(t, <-done)
		assert.Equal(t, want, got)
		assert.Len(t, fds, 1)
		closeAll(fds)
	}
	assert.LessOrEqual(t, len(rx.buf), MaxMessage)

	if os.Geteuid() != 0 {
		return
	}
	// Over the limit (send refuses it, so write it raw): refused whole.
	big := append([]byte(`{"argv":["`), strings.Repeat("y", MaxMessage)...)
	go func() { _ = syscall.Sendmsg(int(a.Fd()), big, syscall.UnixRights(int(f.Fd())), nil, 0) }()
	var got Command
	fds, err := rx.recv(&got)
	assert.ErrorIs(t, err, ErrProtocol)
	assert.Empty(t, fds)
}
