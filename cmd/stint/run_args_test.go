package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunFlagsAmongJobs: flags of `stint run` may come before, between and
// after its spec paths and job names. A wrong job name proves the names got
// past kong: job selection refuses it, not the parser.
func TestRunFlagsAmongJobs(t *testing.T) {
	for _, args := range [][]string{
		{"run", "../../testdata/specs/good/full.toml", "-j", "2", "nosuchjob"},
		{"run", "-j2", "../../testdata/specs/good/full.toml", "--keep-on-failure", "nosuchjob"},
		{"run", "../../testdata/specs/good/full.toml", "--jobs=2", "nosuchjob", "--artifacts", "out"},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"--root", t.TempDir()}, args...), &out, &errb)
		assert.Equal(t, ExitUsage, code, "%q", args)
		assert.NotContains(t, errb.String(), "unexpected argument", "%q", args)
		assert.Contains(t, errb.String(), "nosuchjob", "%q", args)
	}
}

// TestHoistFlags: what kong gets, and what it makes of it.
func TestHoistFlags(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		want      []string
		jobs      int
		artifacts string
	}{
		{[]string{"run", "td.toml", "-j", "2", "fail"}, []string{"td.toml", "fail"}, 2, "artifacts"},
		{[]string{"--root", "/r", "run", "a.toml", "--artifacts", "x", "b", "-j3"}, []string{"a.toml", "b"}, 3, "x"},
		{[]string{"run", "--jobs=4", "a.toml", "--", "-j"}, []string{"a.toml", "-j"}, 4, "artifacts"},
	} {
		var cli CLI
		p, err := kong.New(&cli, kong.Exit(func(int) { t.Fatalf("kong exited on %q", tc.args) }))
		require.NoError(t, err)
		_, err = p.Parse(hoistFlags(p.Model, "run", tc.args))
		require.NoError(t, err, "%q", tc.args)
		assert.Equal(t, tc.want, cli.Run.Args, "%q", tc.args)
		assert.Equal(t, tc.jobs, cli.Run.Parallel, "%q", tc.args)
		assert.Equal(t, tc.artifacts, filepath.Base(cli.Run.Artifacts), "%q", tc.args)
	}
}

// TestRunUnknownImage: run checks image references like validate does,
// before touching the host: a usage error (2) at the reference's
// file:line:col, with or without a local image store yet.
func TestRunUnknownImage(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "td.toml")
	require.NoError(t, os.WriteFile(file, []byte("[job.a]\nimage = \"nosuchimage\"\nrun = [\"true\"]\n"), 0o644))
	for _, withStore := range []bool{false, true} {
		root := t.TempDir()
		if withStore {
			require.NoError(t, os.MkdirAll(filepath.Join(root, "images"), 0o700))
		}
		var out, errb bytes.Buffer
		code := run([]string{"--root", root, "run", file}, &out, &errb)
		assert.Equal(t, ExitUsage, code, errb.String())
		assert.Contains(t, errb.String(), file+":2:1: job.a.image: unknown image \"nosuchimage\"")
		assert.Equal(t, 1, strings.Count(errb.String(), "nosuchimage"), "the message stutters:\n%s", errb.String())
	}
}
