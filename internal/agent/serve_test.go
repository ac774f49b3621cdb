package agent

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/testenv"
)

// The test binary doubles as the agent, so the loop runs in a process of its own: it becomes a
// child subreaper and waits for any child, which a test process must not.
const selfEnv = "STINT_AGENT_TEST"

func TestMain(m *testing.M) {
	switch os.Getenv(selfEnv) {
	case "agent":
		os.Exit(Main())
	}
	os.Exit(m.Run())
}

// served is an agent process with its client and its commands' output.
type served struct {
	c   *Client
	cmd *exec.Cmd
	in  *os.File // /dev/null
	out *os.File // what the commands write (stdout and stderr)
	pid int
}

func serve(t *testing.T) *served {
	t.Helper()
	rt, ag, err := Socketpair()
	require.NoError(t, err)
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "out"))
	require.NoError(t, err)
	t.Cleanup(func() { out.Close() })
	in, err := os.Open(os.DevNull)
	require.NoError(t, err)
	t.Cleanup(func() { in.Close() })
	agentLog, err := os.Create(filepath.Join(dir, "agent.log"))
	require.NoError(t, err)
	stray, err := os.Open(os.DevNull) // a descriptor the agent must not hand on (fd 4)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{selfEnv + "=agent"}
	cmd.Stdout, cmd.Stderr = agentLog, agentLog
	cmd.ExtraFiles = []*os.File{ag, stray}
	require.NoError(t, cmd.Start())
	ag.Close()
	stray.Close()
	agentLog.Close()
	s := &served{c: NewClient(rt), cmd: cmd, in: in, out: out}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.c.Exit()
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("the agent did not exit within 10s of its Exit")
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "agent.log")); len(b) > 0 {
			t.Logf("agent's own output: %s", b)
		}
	})
	s.pid, err = s.c.Ready()
	require.NoError(t, err)
	return s
}

// output returns what the commands wrote so far, and forgets it.
func (s *served) output(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(s.out.Name())
	require.NoError(t, err)
	require.NoError(t, s.out.Truncate(0))
	_, err = s.out.Seek(0, 0)
	require.NoError(t, err)
	return string(b)
}

func (s *served) run(t *testing.T, cmd Command) syscall.WaitStatus {
	t.Helper()
	ws, err := s.c.Run(cmd, s.in, s.out, s.out)
	require.NoError(t, err)
	return ws
}

func sh(script string, env ...string) Command {
	return Command{Argv: []string{"/bin/sh", "-c", script}, Env: env, UID: os.Getuid(), GID: os.Getgid()}
}

func TestServeReportsExitAndSignal(t *testing.T) {
	s := serve(t)
	assert.Equal(t, s.cmd.Process.Pid, s.pid)
	ws := s.run(t, sh("exit 3"))
	assert.Equal(t, 3, ws.ExitStatus())
	assert.False(t, ws.Signaled())
	ws = s.run(t, sh("kill -TERM $$"))
	require.True(t, ws.Signaled())
	assert.Equal(t, syscall.SIGTERM, ws.Signal())
	ws = s.run(t, sh("true"))
	assert.Equal(t, 0, ws.ExitStatus())
}

func TestServeStreamsOutputAndKeepsOrder(t *testing.T) {
	s := serve(t)
	s.run(t, sh("echo one; echo two >&2"))
	s.run(t, sh("echo three"))
	assert.Equal(t, "one\ntwo\nthree\n", s.output(t))
}

func TestServeEnvIsExact(t *testing.T) {
	s := serve(t)
	s.run(t, Command{Argv: []string{"/usr/bin/env"}, Env: []string{"B=2", "A=one two"}, UID: os.Getuid(), GID: os.Getgid()})
	assert.Equal(t, "B=2\nA=one two\n", s.output(t), "nothing of the agent's environment, nothing added")
	s.run(t, Command{Argv: []string{"/usr/bin/env"}, UID: os.Getuid(), GID: os.Getgid()})
	assert.Equal(t, "", s.output(t))
}

func TestServeCwdAndPathLookup(t *testing.T) {
	s := serve(t)
	dir := t.TempDir()
	s.run(t, Command{Argv: []string{"pwd"}, Env: []string{"PATH=/nonexistent:/bin:/usr/bin"}, Cwd: dir, UID: os.Getuid(), GID: os.Getgid()})
	assert.Equal(t, dir+"\n", s.output(t))
	s.run(t, Command{Argv: []string{"pwd"}, Env: []string{"PATH=/bin:/usr/bin"}, UID: os.Getuid(), GID: os.Getgid()})
	assert.Equal(t, "/\n", s.output(t), "no cwd: /")
}

func TestServeStartFailures(t *testing.T) {
	s := serve(t)
	for _, cmd := range []Command{
		{Argv: []string{"/nonexistent/cmd"}},
		{Argv: []string{"nosuchcommand"}, Env: []string{"PATH=/bin"}},
		{Argv: []string{"/bin/true"}, Cwd: "/nonexistent"},
	} {
		cmd.UID, cmd.GID = os.Getuid(), os.Getgid()
		_, err := s.c.Run(cmd, s.in, s.out, s.out)
		var se *StartError
		assert.ErrorAs(t, err, &se, "%v", cmd)
	}
	// The agent serves on after a failure.
	assert.Equal(t, 0, s.run(t, sh("true")).ExitStatus())
}

func TestServeHandsOnOnlyStdio(t *testing.T) {
	s := serve(t)
	// The agent's socket (fd 3) and a stray descriptor it inherited (fd 4)
	// must not reach a command.
	// The shell's own descriptors (ls lists its parent's).
	s.run(t, sh("ls /proc/$$/fd"))
	assert.Equal(t, "0\n1\n2\n", s.output(t), "only the three descriptors of the request")
}

func TestServeNewSessionWithoutTerminal(t *testing.T) {
	s := serve(t)
	// A session leader of its own: its sid is its pid, and /dev/tty is not there.
	s.run(t, sh(`[ "$(cut -d' ' -f6 /proc/$$/stat)" = $$ ] && echo own-session; (exec </dev/tty) 2>/dev/null || echo no-tty`))
	assert.Equal(t, "own-session\nno-tty\n", s.output(t))
}

func TestServeReapsOrphansAndExits(t *testing.T) {
	s := serve(t)
	// The command leaves a grandchild behind; it outlives the command.
	s.run(t, sh("sleep 100 & echo $!"))
	orphan, err := strconv.Atoi(strings.TrimSpace(s.output(t)))
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(orphan, 0), "the orphan runs on after its parent ended")
	n, err := s.c.Reap()
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.ErrorIs(t, syscall.Kill(orphan, 0), syscall.ESRCH, "killed and waited for (no zombie left)")

	assert.Equal(t, 0, s.run(t, sh("true")).ExitStatus(), "the agent serves on after a reap")
	s.run(t, sh("sleep 100 &"))
	require.NoError(t, s.c.Exit())
	require.NoError(t, s.cmd.Wait())
	assert.Equal(t, 0, s.cmd.ProcessState.ExitCode())
}

func TestServeServesOnAsInitWhenTheSocketEnds(t *testing.T) {
	s := serve(t)
	s.run(t, sh("sleep 100 & echo $!"))
	orphan, err := strconv.Atoi(strings.TrimSpace(s.output(t)))
	require.NoError(t, err)
	require.NoError(t, s.c.Close())
	time.Sleep(100 * time.Millisecond)
	assert.NoError(t, syscall.Kill(s.pid, 0), "the agent runs on (a kept container stays up)")
	assert.NoError(t, syscall.Kill(orphan, 0), "and so do the job's processes, until the container is stopped")
	require.NoError(t, syscall.Kill(orphan, syscall.SIGKILL))
	require.NoError(t, s.cmd.Process.Kill())
	_ = s.cmd.Wait()
}

func TestServeRunsAsUserAndGroups(t *testing.T) {
	testenv.RequiresRoot(t)
	s := serve(t)
	s.run(t, Command{Argv: []string{"/bin/sh", "-c", "id -u; id -g; id -G"}, UID: 1000, GID: 1001, Groups: []int{1001, 27}})
	assert.Equal(t, "1000\n1001\n1001 27\n", s.output(t), "uid, gid and supplementary groups, none of root's")
}

func TestServeOutputEndsWithTheCommand(t *testing.T) {
	s := serve(t)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	done := make(chan string)
	go func() { b, _ := io.ReadAll(r); done <- string(b) }()
	ws, err := s.c.Run(sh("echo out; echo err >&2"), s.in, w, w)
	require.NoError(t, err)
	assert.Equal(t, 0, ws.ExitStatus())
	w.Close()
	select {
	case got := <-done:
		assert.Equal(t, "out\nerr\n", got, "the agent holds no copy of the command's pipe: EOF once it ends")
	case <-time.After(5 * time.Second):
		t.Fatal("the command's output pipe stayed open after it ended")
	}
}

func TestServeRefusesRunWithoutStdio(t *testing.T) {
	s := serve(t)
	require.NoError(t, s.c.c.send(Request{Op: OpRun, Command: sh("true")}))
	_, err := s.c.read(KindExited)
	assert.ErrorIs(t, err, ErrProtocol)
	assert.Contains(t, err.Error(), "want 3")
	assert.Equal(t, 0, s.run(t, sh("true")).ExitStatus(), "it serves on")
}
