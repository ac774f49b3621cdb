package agent

import (
	"bufio"
	"encoding/json"
	"io"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeAgent answers the client's requests with the given reports, one per
// request after a Ready, and records the requests.
func fakeAgent(t *testing.T, reports ...Report) (*Client, <-chan Request) {
	t.Helper()
	ctlR, ctlW := io.Pipe()
	repR, repW := io.Pipe()
	got := make(chan Request, 16)
	go func() {
		defer repW.Close()
		enc := json.NewEncoder(repW)
		_ = enc.Encode(Report{Kind: KindReady, Pid: 1})
		dec := json.NewDecoder(bufio.NewReader(ctlR))
		for _, r := range reports {
			var req Request
			if err := dec.Decode(&req); err != nil {
				return
			}
			got <- req
			_ = enc.Encode(r)
		}
		close(got)
		repW.Close()
		_, _ = io.Copy(io.Discard, ctlR) // the pipe is synchronous: take what comes after
	}()
	t.Cleanup(func() { ctlR.Close(); repR.Close() })
	return NewClient(ctlW, repR), got
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

	cmd := Command{Argv: []string{"/bin/sh", "-c", "exit 3"}, Env: []string{"A=1"}, UID: 1000, GID: 1000, Groups: []int{27}, Cwd: "/src"}
	ws, err := c.Run(cmd)
	require.NoError(t, err)
	assert.Equal(t, 3, ws.ExitStatus())
	assert.Equal(t, Request{Op: OpRun, Command: cmd}, <-got, "the command reaches the agent whole")

	ws, err = c.Run(Command{Argv: []string{"x"}})
	require.NoError(t, err)
	assert.True(t, ws.Signaled())
	assert.Equal(t, syscall.SIGKILL, ws.Signal())
	<-got

	_, err = c.Run(Command{Argv: []string{"/nope"}})
	var se *StartError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "/nope", se.Argv0)
	assert.Contains(t, err.Error(), "no such file")
	<-got

	n, err := c.Reap()
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Equal(t, OpReap, (<-got).Op)

	require.NoError(t, c.Exit())
	assert.Equal(t, OpExit, (<-got).Op)
}

func TestClientAgentGone(t *testing.T) {
	c, _ := fakeAgent(t) // Ready, then the reports end
	_, err := c.Ready()
	require.NoError(t, err)
	_, err = c.Run(Command{Argv: []string{"/bin/true"}})
	assert.ErrorIs(t, err, ErrGone)
}

func TestClientWrongReport(t *testing.T) {
	c, _ := fakeAgent(t, Report{Kind: KindReaped})
	_, err := c.Ready()
	require.NoError(t, err)
	_, err = c.Run(Command{Argv: []string{"/bin/true"}})
	assert.ErrorIs(t, err, ErrProtocol)

	c, _ = fakeAgent(t, Report{Kind: KindError, Error: "a command is running"})
	_, _ = c.Ready()
	_, err = c.Reap()
	assert.ErrorIs(t, err, ErrProtocol)
	assert.Contains(t, err.Error(), "a command is running")
}

func TestClientRefusesEmptyCommand(t *testing.T) {
	c, _ := fakeAgent(t)
	_, err := c.Run(Command{})
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
