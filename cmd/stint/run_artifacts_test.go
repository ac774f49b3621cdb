package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner/output"
)

const reportSpec = `
[job.report]
image = "busybox"
run = ["mkdir -p /out/sub && echo hello > /out/a.txt && echo x > /out/sub/b.txt && ln -s a.txt /out/latest && mkfifo /out/pipe"]
[[job.report.artifact]]
path = "/out"
[[job.report.artifact]]
path = "/dist/*.whl"
[[job.report.artifact]]
path = "/proc/version"
dest = "proc"
`

// TestCLIArtifactsReport: the text summary, the job's log and --json each
// say what was collected (files, links with their targets, bytes), which
// pattern matched nothing (in those words) and what was skipped and why;
// a /proc file (which says it is 0 bytes) is copied whole.
func TestCLIArtifactsReport(t *testing.T) {
	f := newCLI(t)
	p := f.spec(t, reportSpec)
	version, err := os.ReadFile("/proc/version") // the container's kernel is the host's
	require.NoError(t, err)
	total := len("hello\n") + len("x\n") + len(version)

	out, code := f.run(t, "run", p)
	require.Equal(t, 0, code, out)
	want := []string{
		"artifacts: " + filepath.Join(f.dir, "artifacts", "report") + ": 3 files, 1 link, ",
		"; 1 pattern matched nothing; 1 skipped",
		"link /out/latest -> a.txt",
		"matched nothing: /dist/*.whl",
		"skipped /out/pipe: fifo: not copied",
	}
	for _, w := range want {
		assert.Contains(t, out, w)
	}
	assert.NotContains(t, out, "1 files")
	got, err := os.ReadFile(filepath.Join(f.dir, "artifacts", "report", "proc", "version"))
	require.NoError(t, err)
	assert.Equal(t, string(version), string(got), "a /proc file is read until EOF")

	logs, err := filepath.Glob(filepath.Join(f.root, "logs", "stint-report-*.log"))
	require.NoError(t, err)
	require.Len(t, logs, 1)
	log, err := os.ReadFile(logs[0])
	require.NoError(t, err)
	for _, w := range want {
		assert.Contains(t, string(log), w, "the log")
	}

	out, code = f.run(t, "--json", "run", p)
	require.Equal(t, 0, code, out)
	var finished *output.Event
	reasons, targets := map[string]string{}, map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var ev output.Event
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue // stderr's lines
		}
		switch ev.Type {
		case output.EventArtifact:
			if ev.Reason != "" {
				reasons[ev.Artifact] = ev.Reason
			}
			if ev.Target != "" {
				targets[ev.Artifact] = ev.Target
			}
		case output.EventJobFinished:
			finished = &ev
		}
	}
	assert.Equal(t, map[string]string{"/dist/*.whl": "matched nothing", "/out/pipe": "fifo: not copied"}, reasons)
	assert.Equal(t, map[string]string{"/out/latest": "a.txt"}, targets)
	require.NotNil(t, finished)
	assert.Equal(t, 3, finished.Files)
	assert.Equal(t, int64(total), finished.Bytes)
	f.assertClean(t)
}

// TestCLIArtifactsIncomplete: a tree deeper than the collector goes fails
// the job (exit 1) naming the directory cut, instead of passing with the
// bottom lost; a symlink planted as the job's artifact directory fails it
// too, named by its path (not /proc/self/fd/N), and nothing is written
// through it.
func TestCLIArtifactsIncomplete(t *testing.T) {
	f := newCLI(t)
	require.NoError(t, os.Chmod(f.dir, 0o777)) // the container's root writes ./artifacts
	victim := t.TempDir()
	p := f.spec(t, `
[job.deep]
image = "busybox"
run = ["d=/tree; i=0; while [ $i -lt 260 ]; do d=$d/d; i=$((i+1)); done; mkdir -p $d && echo bottom > $d/f && echo top > /tree/top"]
[[job.deep.artifact]]
path = "/tree"

[job.plant]
image = "busybox"
run = ["ln -s `+victim+` /ws/artifacts/plant && echo data > /file"]
[[job.plant.mount]]
source = "."
target = "/ws"
[[job.plant.artifact]]
path = "/file"
`)
	out, code := f.run(t, "run", p, "deep")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "FAILED")
	assert.Contains(t, out, "directory tree deeper than 256 levels")
	assert.Contains(t, out, "/tree/"+strings.Repeat("d/", 255)+"d")
	top, err := os.ReadFile(filepath.Join(f.dir, "artifacts", "deep", "tree", "top"))
	require.NoError(t, err, "the rest is still collected")
	assert.Equal(t, "top\n", string(top))

	require.NoError(t, os.MkdirAll(filepath.Join(f.dir, "artifacts"), 0o777))
	require.NoError(t, os.Chmod(filepath.Join(f.dir, "artifacts"), 0o777))
	out, code = f.run(t, "run", p, "plant")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "artifact directory "+filepath.Join(f.dir, "artifacts", "plant")+" is a symlink")
	assert.NotContains(t, out, "/proc/self/fd")
	ents, err := os.ReadDir(victim)
	require.NoError(t, err)
	assert.Empty(t, ents, "nothing written through the planted symlink")
	f.assertClean(t)
}
