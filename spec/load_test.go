package spec

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// go test ./spec -run Golden -update rewrites the goldens next to the specs.
var update = flag.Bool("update", false, "rewrite golden files in testdata/specs")

// knownImages stands in for the local image store in golden tests.
var knownImages = map[string]bool{"busybox": true, "alpine": true, "debian/12": true, "0123456789abcdef": true}

func testOptions() Options {
	return Options{ImageKnown: func(ref string) bool { return knownImages[ref] }}
}

// specCases lists the specs under testdata/specs/<kind>: every *.toml file,
// and every directory holding *.toml files (a multi-file set), with the
// golden next to it.
func specCases(t *testing.T, kind, goldenExt string) map[string]string {
	t.Helper()
	dir := filepath.Join("specs", kind)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	cases := map[string]string{}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		switch {
		case !e.IsDir() && strings.HasSuffix(e.Name(), ".toml"):
			cases[p] = strings.TrimSuffix(p, ".toml") + goldenExt
		case e.IsDir():
			if m, _ := filepath.Glob(filepath.Join(p, "*.toml")); len(m) > 0 {
				cases[p] = p + goldenExt
			}
		}
	}
	require.NotEmpty(t, cases)
	return cases
}

// inTestdata runs the test from testdata/, so that file names in problems
// are stable ("specs/bad/five.toml"), and returns testdata's absolute path.
func inTestdata(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs("../testdata")
	require.NoError(t, err)
	t.Chdir(abs)
	return abs
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden (run go test ./spec -update)")
	assert.Equal(t, string(want), string(got), "golden %s", path)
}

func TestGoldenGood(t *testing.T) {
	testdata := inTestdata(t)
	for spec, gold := range specCases(t, "good", ".json") {
		t.Run(spec, func(t *testing.T) {
			set, err := Load([]string{spec}, testOptions())
			require.NoError(t, err)
			b, err := json.MarshalIndent(set, "", "  ")
			require.NoError(t, err)
			b = []byte(strings.ReplaceAll(string(b), testdata, "TESTDATA") + "\n")
			golden(t, gold, b)
		})
	}
}

func TestGoldenBad(t *testing.T) {
	testdata := inTestdata(t)
	for spec, gold := range specCases(t, "bad", ".err") {
		t.Run(spec, func(t *testing.T) {
			set, err := Load([]string{spec}, testOptions())
			require.Error(t, err)
			assert.Nil(t, set, "no set is returned for a bad spec")
			var perr *Errors
			require.True(t, errors.As(err, &perr), "a bad spec gives *spec.Errors, got %T: %v", err, err)
			for _, p := range perr.Problems {
				assert.NotZero(t, p.Line, "every problem has a line: %s", p)
			}
			golden(t, gold, []byte(strings.ReplaceAll(err.Error(), testdata, "TESTDATA")+"\n"))
		})
	}
}

// The acceptance: five different mistakes, five problems, each with its line.
func TestFiveMistakes(t *testing.T) {
	inTestdata(t)
	_, err := Load([]string{"specs/bad/five.toml"}, testOptions())
	var perr *Errors
	require.True(t, errors.As(err, &perr))
	require.Len(t, perr.Problems, 5)
	lines := []int{}
	for _, p := range perr.Problems {
		lines = append(lines, p.Line)
	}
	assert.Equal(t, []int{5, 9, 10, 11, 16}, lines)
	assert.Equal(t, Problem{File: "specs/bad/five.toml", Line: 11, Col: 1, Path: "job.test.rn", Msg: "unknown key", Hint: `did you mean "run"?`}, perr.Problems[3])
	assert.Equal(t, `specs/bad/five.toml:11:1: job.test.rn: unknown key; did you mean "run"?`, perr.Problems[3].String())
}

func TestSyntaxErrorNamesLine(t *testing.T) {
	inTestdata(t)
	_, err := Load([]string{"specs/bad/syntax.toml"}, testOptions())
	var perr *Errors
	require.True(t, errors.As(err, &perr))
	require.Len(t, perr.Problems, 1)
	assert.Equal(t, 6, perr.Problems[0].Line)
	assert.Equal(t, 1, perr.Problems[0].Col)
}

func TestMultiFileSet(t *testing.T) {
	inTestdata(t)
	set, err := Load([]string{"specs/good/multi"}, testOptions())
	require.NoError(t, err)
	assert.Equal(t, "multi", set.Name)
	require.Len(t, set.Files, 2)
	assert.Equal(t, "jobs.toml", filepath.Base(set.Files[0]), "a directory's files load sorted by name")
	require.Len(t, set.Jobs, 1)
	assert.Equal(t, int64(512<<20), set.Jobs[0].Limits.Memory, "the profile of the other file applies")
	assert.Equal(t, "yes", set.Jobs[0].Env["CI"], "the job's own env wins over the profile's")

	// The same files named one by one form the same set.
	bySet, err := Load([]string{"specs/good/multi/profiles.toml", "specs/good/multi/jobs.toml"}, testOptions())
	require.NoError(t, err)
	assert.Equal(t, set.Jobs, bySet.Jobs)
}

func TestLoadMissingPaths(t *testing.T) {
	dir := t.TempDir()
	_, err := Load([]string{filepath.Join(dir, "nope.toml"), dir}, Options{})
	var perr *Errors
	require.True(t, errors.As(err, &perr))
	require.Len(t, perr.Problems, 2)
	assert.Contains(t, perr.Problems[0].String(), "no *.toml files in this directory")
	assert.Contains(t, perr.Problems[1].String(), "cannot read spec: no such file or directory")

	_, err = Load(nil, Options{})
	assert.Error(t, err)
}
