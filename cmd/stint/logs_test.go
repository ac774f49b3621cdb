package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// jobLogs lists the root's job logs.
func (f *cliFixture) jobLogs(t *testing.T, job string) []string {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(f.root, "logs", "stint-"+job+"-*.log"))
	require.NoError(t, err)
	return logs
}

// TestCLILogsJob: `stint logs JOB` prints the job's newest log (its lines,
// their output, the artifacts report), by job or container name; --follow
// prints a running job's log until the job ends, then exits by itself.
func TestCLILogsJob(t *testing.T) {
	f := newCLI(t)
	p := f.spec(t, `
[job.hello]
image = "busybox"
run = ["echo hello-out-$RANDOM_WORD"]
env = { RANDOM_WORD = "one" }
[[job.hello.artifact]]
path = "/none/*"

[job.slow]
image = "busybox"
run = ["echo first", "sleep 3", "echo second"]
`)
	out, code := f.run(t, "run", p, "hello")
	require.Equal(t, 0, code, out)
	out, code = f.run(t, "logs", "hello")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "+ echo hello-out-$RANDOM_WORD\nhello-out-one\n")
	assert.Contains(t, out, "matched nothing: /none/*")

	logs := f.jobLogs(t, "hello")
	require.Len(t, logs, 1)
	ctr := strings.TrimSuffix(filepath.Base(logs[0]), ".log")
	byCtr, code := f.run(t, "logs", ctr)
	require.Equal(t, 0, code, byCtr)
	assert.Equal(t, out, byCtr)

	out, code = f.run(t, "logs", "nosuch")
	assert.Equal(t, ExitUsage, code, out)
	assert.Contains(t, out, `no long-lived container and no job log named "nosuch"`)

	run := f.startUntil(t, "[slow] first", "run", p, "slow")
	follow := f.cmd("logs", "slow", "--follow")
	done := make(chan struct{})
	var followed []byte
	var followErr error
	go func() {
		followed, followErr = follow.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		_ = follow.Process.Kill()
		t.Fatal("stint logs --follow did not end with its job")
	}
	require.NoError(t, followErr, "%s", followed)
	assert.Contains(t, string(followed), "first\n+ sleep 3\n+ echo second\nsecond\n")
	require.NoError(t, run.Wait(), "the job passed")
	f.assertClean(t)
}

// TestCLIGcKeepLogs: gc removes job logs older than --keep-logs (7 days by
// default), never a kept job's, and refuses a bad age with exit 2.
func TestCLIGcKeepLogs(t *testing.T) {
	f := newCLI(t)
	p := f.spec(t, `
[job.old]
image = "busybox"
run = ["true"]
[job.fresh]
image = "busybox"
run = ["true"]
[job.kept]
image = "busybox"
run = ["false"]
`)
	out, code := f.run(t, "run", "--keep-on-failure", p)
	require.Equal(t, 1, code, out)
	old := f.jobLogs(t, "old")
	require.Len(t, old, 1)
	eightDays := time.Now().Add(-8 * 24 * time.Hour)
	require.NoError(t, os.Chtimes(old[0], eightDays, eightDays))
	kept := f.jobLogs(t, "kept")
	require.Len(t, kept, 1)
	require.NoError(t, os.Chtimes(kept[0], eightDays, eightDays))

	out, code = f.run(t, "gc")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "removed 1 job log older than 7d")
	assert.NoFileExists(t, old[0])
	assert.Len(t, f.jobLogs(t, "fresh"), 1, "a log younger than 7 days stays")
	assert.FileExists(t, kept[0], "a kept job's log stays with its container")

	out, code = f.run(t, "gc", "--keep-logs", "soon")
	assert.Equal(t, ExitUsage, code, out)
	assert.Contains(t, out, `--keep-logs "soon": want a duration such as 7d, 36h or 90m`)

	out, code = f.run(t, "gc", "--kept", "--keep-logs", "0")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "removed 2 job logs older than 0")
	assert.Empty(t, f.jobLogs(t, "*"))
	f.assertClean(t)
}

// TestCLILogsSameSafeName: two jobs whose names are the same once made safe
// for a container name (a_b, a-b) keep their logs apart: `stint logs NAME`
// prints only that job's newest log, whichever ran last, and gc removes
// both logs and what names them.
func TestCLILogsSameSafeName(t *testing.T) {
	f := newCLI(t)
	p := f.spec(t, `
[job.a_b]
image = "busybox"
run = ["echo from-underscore"]
[job.a-b]
image = "busybox"
run = ["echo from-dash"]
`)
	for _, job := range []string{"a_b", "a-b", "a_b", "a-b"} {
		out, code := f.run(t, "run", p, job)
		require.Equal(t, 0, code, out)
	}
	want := map[string]string{"a_b": "from-underscore", "a-b": "from-dash"}
	for job, line := range want {
		out, code := f.run(t, "logs", job)
		require.Equal(t, 0, code, out)
		assert.Contains(t, out, "\n"+line+"\n", "stint logs %s", job)
		for other, otherLine := range want {
			if other != job {
				assert.NotContains(t, out, otherLine, "stint logs %s printed %s's log", job, other)
			}
		}
	}
	logs := f.jobLogs(t, "a-b")
	require.Len(t, logs, 4)
	seen := map[string]int{}
	for _, l := range logs {
		ctr := strings.TrimSuffix(filepath.Base(l), ".log")
		out, code := f.run(t, "logs", ctr)
		require.Equal(t, 0, code, out)
		for _, line := range want {
			if strings.Contains(out, line) {
				seen[line]++
			}
		}
	}
	assert.Equal(t, map[string]int{"from-underscore": 2, "from-dash": 2}, seen, "each log by its container's name")

	out, code := f.run(t, "gc", "--keep-logs", "0")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "removed 4 job logs older than 0")
	left, err := os.ReadDir(filepath.Join(f.root, "logs"))
	require.NoError(t, err)
	assert.Empty(t, left, "nothing of the jobs' logs is left")
	f.assertClean(t)
}
