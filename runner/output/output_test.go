package output

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(p, []byte(got), 0o644))
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, string(want), got)
}

// recorder is a Sink that keeps what it got.
type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) Line(job string, step int, stream, line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf("%s/%d/%s: %q", job, step, stream, line))
}

type write struct {
	stream string // Stdout, Stderr, or "step N" / "flush"
	data   string
}

func TestJobLines(t *testing.T) {
	cases := []struct {
		name   string
		writes []write
		want   []string
	}{
		{"whole lines", []write{{Stdout, "a\nb\n"}}, []string{`j/0/stdout: "a"`, `j/0/stdout: "b"`}},
		{"partial lines joined", []write{{Stdout, "hel"}, {Stdout, "lo\nwor"}, {Stdout, "ld\n"}},
			[]string{`j/0/stdout: "hello"`, `j/0/stdout: "world"`}},
		{"streams buffered apart", []write{{Stdout, "out-"}, {Stderr, "err\n"}, {Stdout, "line\n"}},
			[]string{`j/0/stderr: "err"`, `j/0/stdout: "out-line"`}},
		{"crlf and empty lines", []write{{Stdout, "a\r\n\n\r\n"}}, []string{`j/0/stdout: "a"`, `j/0/stdout: ""`, `j/0/stdout: ""`}},
		{"bare cr kept", []write{{Stdout, "10%\r20%\n"}}, []string{`j/0/stdout: "10%\r20%"`}},
		{"step change flushes and tags", []write{{"step 1", ""}, {Stdout, "no newline"}, {"step 2", ""}, {Stderr, "x\n"}},
			[]string{`j/1/stdout: "no newline"`, `j/2/stderr: "x"`}},
		{"close flushes", []write{{Stderr, "tail"}, {"close", ""}}, []string{`j/0/stderr: "tail"`}},
		{"nothing to flush", []write{{"flush", ""}, {"close", ""}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			var log bytes.Buffer
			j := NewJob("j", rec, &log)
			var raw strings.Builder
			for _, w := range tc.writes {
				switch w.stream {
				case Stdout:
					n, err := j.Stdout().Write([]byte(w.data))
					require.NoError(t, err)
					assert.Equal(t, len(w.data), n)
					raw.WriteString(w.data)
				case Stderr:
					_, err := j.Stderr().Write([]byte(w.data))
					require.NoError(t, err)
					raw.WriteString(w.data)
				case "flush":
					j.Flush()
				case "close":
					require.NoError(t, j.Close())
				default:
					var n int
					_, err := fmt.Sscanf(w.stream, "step %d", &n)
					require.NoError(t, err)
					j.SetStep(n)
				}
			}
			assert.Equal(t, tc.want, rec.lines)
			assert.Equal(t, raw.String(), log.String(), "the log gets the raw bytes")
		})
	}
}

func TestLongLineChunked(t *testing.T) {
	rec := &recorder{}
	j := NewJob("j", rec, nil)
	long := strings.Repeat("x", maxLine+10)
	_, err := j.Stdout().Write([]byte(long))
	require.NoError(t, err)
	require.Len(t, rec.lines, 1, "a full chunk is passed on without waiting for a newline")
	require.NoError(t, j.Close())
	require.Len(t, rec.lines, 2)
	assert.Equal(t, fmt.Sprintf("j/0/stdout: %q", strings.Repeat("x", 10)), rec.lines[1])
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, fmt.Errorf("disk full") }

func TestLogErrorReportedOnClose(t *testing.T) {
	rec := &recorder{}
	j := NewJob("j", rec, failWriter{})
	_, err := j.Stdout().Write([]byte("still shown\n"))
	require.NoError(t, err, "the job's output keeps flowing")
	assert.Equal(t, []string{`j/0/stdout: "still shown"`}, rec.lines)
	assert.ErrorContains(t, j.Close(), "write log of job j: disk full")
}

// lineWriter records every Write it gets, to check that each one is a line.
type lineWriter struct {
	mu     sync.Mutex
	writes []string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

// Eight jobs, each writing two streams from two goroutines in random chunks,
// into one Terminal: every Write the terminal gets is exactly one whole line,
// and each job's stream arrives complete and in order.
func TestConcurrentJobsNeverMixLines(t *testing.T) {
	out := &lineWriter{}
	term := NewTerminal(out, TerminalOptions{})
	const jobs, lines = 8, 200
	var wg sync.WaitGroup
	for i := range jobs {
		name := fmt.Sprintf("job%d", i)
		j := NewJob(name, term, nil)
		var streams sync.WaitGroup
		for _, s := range []string{Stdout, Stderr} {
			w := j.Stdout()
			if s == Stderr {
				w = j.Stderr()
			}
			streams.Go(func() {
				var all strings.Builder
				for n := range lines {
					fmt.Fprintf(&all, "%s %s line %d %s\n", name, s, n, strings.Repeat("=", n%37))
				}
				data := []byte(all.String())
				r := rand.New(rand.NewPCG(uint64(i), 7))
				for len(data) > 0 {
					k := min(len(data), 1+r.IntN(50))
					_, err := w.Write(data[:k])
					assert.NoError(t, err)
					data = data[k:]
				}
			})
		}
		wg.Go(func() {
			streams.Wait()
			assert.NoError(t, j.Close())
		})
	}
	wg.Wait()

	next := map[string]int{}
	for _, w := range out.writes {
		require.True(t, strings.HasSuffix(w, "\n") && strings.Count(w, "\n") == 1, "one line per write: %q", w)
		var job, job2, stream string
		var n int
		_, err := fmt.Sscanf(w, "%s | %s %s line %d", &job, &job2, &stream, &n)
		require.NoError(t, err, "mixed line %q", w)
		require.Equal(t, job, job2, "line of one job under another's prefix: %q", w)
		key := job + "/" + stream
		require.Equal(t, next[key], n, "lines of %s out of order", key)
		assert.Equal(t, fmt.Sprintf("%s | %s %s line %d %s\n", job, job, stream, n, strings.Repeat("=", n%37)), w)
		next[key]++
	}
	assert.Len(t, next, jobs*2)
	for k, n := range next {
		assert.Equal(t, lines, n, k)
	}
}

func TestTerminalFormat(t *testing.T) {
	var b bytes.Buffer
	plain := NewTerminal(&b, TerminalOptions{Width: 14})
	color := NewTerminal(&b, TerminalOptions{Color: true})
	for _, tr := range []*Terminal{plain, color} {
		tr.Line("test[go=1.22]", 1, Stdout, "ok  example.com/pkg 0.01s")
		tr.Line("lint", 1, Stderr, "")
		tr.Line("a-much-longer-job-name", 2, Stdout, "x")
	}
	golden(t, "terminal.golden", b.String())
}

func TestJobColorStable(t *testing.T) {
	seen := map[string]bool{}
	for i := range 50 {
		name := fmt.Sprintf("test[go=1.%d]", i)
		c := JobColor(name)
		assert.Equal(t, c, JobColor(name), "same job, same colour")
		assert.Contains(t, palette, c)
		seen[c] = true
	}
	assert.Greater(t, len(seen), len(palette)/2, "jobs are spread over the palette")
}

func TestColorFor(t *testing.T) {
	assert.False(t, ColorFor(&bytes.Buffer{}), "not a file")
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, ColorFor(f), "a regular file is no terminal")
}

func TestEmitterGolden(t *testing.T) {
	var b bytes.Buffer
	em := NewEmitter(&b)
	clock := time.Date(2026, 11, 23, 21, 0, 0, 0, time.UTC)
	em.now = func() time.Time { clock = clock.Add(1500 * time.Microsecond); return clock }
	job := "test[go=1.22]"
	events := []Event{
		{Type: EventJobStarted, Job: job, Container: "stint-demo-test-go-1.22-a1b2"},
		{Type: EventStepStarted, Job: job, Step: 1, Command: "make test"},
		{Type: EventStepFinished, Job: job, Step: 1, Status: Status(0), Millis: 812},
		{Type: EventStepStarted, Job: job, Step: 2, Command: "make dist"},
		{Type: EventStepFinished, Job: job, Step: 2, Signal: "SIGKILL", OOM: true, Millis: 40},
		{Type: EventArtifact, Job: job, Artifact: "/src/dist/a.tar.gz", Dest: "artifacts/test/a.tar.gz", Bytes: 1024},
		{Type: EventArtifact, Job: job, Artifact: "/src/dist/abs.tar.gz", Target: "/etc/passwd"},
		{Type: EventArtifact, Job: job, Artifact: "/src/dist/fifo", Reason: "fifo: not copied"},
		{Type: EventJobFinished, Job: job, Result: ResultFailed, Step: 2, Signal: "SIGKILL", OOM: true, Millis: 900},
		{Type: EventTeardownDone, Job: job, Container: "stint-demo-test-go-1.22-a1b2", Millis: 120},
		{Type: EventError, Error: "storage pool /var/lib/stint/storage: no space left on device"},
	}
	start := em.now()
	em.Line(job, 1, Stdout, "ok \xff invalid utf-8")
	for _, ev := range events {
		require.NoError(t, em.Emit(ev))
	}
	em.Phase(job, PhaseClone, start)
	golden(t, "events.golden", b.String())

	// Each line decodes back to the event it came from.
	sc := bufio.NewScanner(&b)
	sc.Scan() // the output line
	for _, want := range events {
		require.True(t, sc.Scan())
		var got Event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &got))
		got.Time = time.Time{}
		assert.Equal(t, want, got)
	}
}

func TestEmitterConcurrent(t *testing.T) {
	var b bytes.Buffer
	em := NewEmitter(&b)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for n := range 100 {
				assert.NoError(t, em.Emit(Event{Type: EventOutput, Job: fmt.Sprint("j", i), Step: n, Line: strings.Repeat("y", n)}))
			}
		})
	}
	wg.Wait()
	sc := bufio.NewScanner(&b)
	count := 0
	for sc.Scan() {
		var ev Event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ev), "line %d: %s", count, sc.Text())
		assert.Len(t, ev.Line, ev.Step)
		assert.False(t, ev.Time.IsZero())
		count++
	}
	assert.Equal(t, 800, count)
}

func TestOpenLog(t *testing.T) {
	root := t.TempDir()
	for range 2 {
		f, err := OpenLog(root, "stint-demo-test-a1b2")
		require.NoError(t, err)
		j := NewJob("test", &recorder{}, f)
		_, err = j.Stdout().Write([]byte("one\n"))
		require.NoError(t, err)
		require.NoError(t, j.Close())
		require.NoError(t, f.Close())
	}
	b, err := os.ReadFile(LogPath(root, "stint-demo-test-a1b2"))
	require.NoError(t, err)
	assert.Equal(t, "one\none\n", string(b), "appends")
	assert.Equal(t, filepath.Join(root, "logs", "stint-demo-test-a1b2.log"), LogPath(root, "stint-demo-test-a1b2"))
	for _, bad := range []string{"", "../x", "a/b", ".hidden"} {
		_, err := OpenLog(root, bad)
		assert.ErrorContains(t, err, "invalid container name", bad)
	}
}
