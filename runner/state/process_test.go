package state

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const helperEnv = "STINT_STATE_HELPER_DIR"

// TestHelperHoldRecord is not a test: run as a child process by
// TestLockDiesWithOwner, it creates record "job1" in $STINT_STATE_HELPER_DIR,
// says "held", and waits to be killed.
func TestHelperHoldRecord(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process for TestLockDiesWithOwner")
	}
	s, err := Open(dir)
	if err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(1)
	}
	if _, err := s.Create(&Record{Name: "job1", Kind: KindJob, Phase: "running"}); err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("held\n")
	time.Sleep(time.Minute) // the parent kills us long before
	os.Exit(2)
}

// A record created by another process is busy while that process lives
// (Create collides, Claim refuses, it is no orphan), and becomes an orphan
// that can be claimed as soon as the process dies by SIGKILL, without any
// cleanup code of its own running.
func TestLockDiesWithOwner(t *testing.T) {
	s := openTemp(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldRecord$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+s.Dir())
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill() // no-op once it is dead
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "held\n", line)

	_, err = s.Create(&Record{Name: "job1", Kind: KindJob})
	assert.ErrorIs(t, err, ErrExists, "two processes must not share a name")
	_, err = s.Claim("job1")
	assert.ErrorIs(t, err, ErrBusy)
	orphans, err := s.Orphans()
	require.NoError(t, err)
	assert.Empty(t, orphans, "a live owner's record is no orphan")
	rec, err := s.Get("job1")
	require.NoError(t, err)
	assert.Equal(t, cmd.Process.Pid, rec.Owner)

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	err = cmd.Wait()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "helper exited: %v", err)
	assert.Equal(t, syscall.SIGKILL, ee.Sys().(syscall.WaitStatus).Signal())

	orphans, err = s.Orphans()
	require.NoError(t, err)
	require.Len(t, orphans, 1)
	assert.Equal(t, "job1", orphans[0].Name)
	assert.Equal(t, PhaseRunning, orphans[0].Phase, "the journal survived the kill")

	h, err := s.Claim("job1")
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), h.Record().Owner)
	require.NoError(t, h.Delete())
	assert.Empty(t, dirNames(t, s))
}
