package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countDecodes counts what reaches the TOML decoder while a test runs.
func countDecodes(t *testing.T) *int {
	t.Helper()
	n := new(int)
	orig := tomlDecode
	tomlDecode = func(src string, v any) error {
		*n++
		return orig(src, v)
	}
	t.Cleanup(func() { tomlDecode = orig })
	return n
}

// loadBomb loads src and returns its one problem, checking that the decoder
// never saw it and that refusing it took well under a second and little memory.
func loadBomb(t *testing.T, src string, opts Options) Problem {
	t.Helper()
	decodes := countDecodes(t)
	p := filepath.Join(t.TempDir(), "bomb.toml")
	require.NoError(t, os.WriteFile(p, []byte(src), 0o644))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := Load([]string{p}, opts)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	assert.Less(t, elapsed, 500*time.Millisecond, "refused at once")
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<20), "allocated little")
	assert.Zero(t, *decodes, "the TOML decoder never saw the bomb")
	require.ErrorIs(t, err, ErrLimit)
	var perr *Errors
	require.ErrorAs(t, err, &perr)
	require.Len(t, perr.Problems, 1, "%v", err)
	return perr.Problems[0]
}

// The reproducer, and ten times deeper (which took a host down).
func TestDepthBombRefusedBeforeDecoding(t *testing.T) {
	for _, n := range []int{10_000, 100_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			src := "version = 1\nx = " + strings.Repeat("{a=", n) + "1" + strings.Repeat("}", n) + "\n"
			p := loadBomb(t, src, Options{})
			assert.Equal(t, LimitDepth, p.Limit)
			assert.Equal(t, 2, p.Line)
			assert.Equal(t, 5+3*(MaxDepth-1), p.Col, "at the { that is one too deep")
			assert.Contains(t, p.String(), "nested deeper than the limit of 32 levels")
		})
	}
}

func TestDepthBombShapes(t *testing.T) {
	deep := 100_000
	for name, src := range map[string]string{
		"arrays":       "x = " + strings.Repeat("[", deep) + strings.Repeat("]", deep),
		"mixed":        "x = " + strings.Repeat("[{a=", deep/2) + "1" + strings.Repeat("}]", deep/2),
		"dotted key":   strings.Repeat("a.", deep) + "a = 1",
		"header":       "[" + strings.Repeat("a.", deep) + "a]",
		"array header": "[[" + strings.Repeat("a.", deep) + "a]]",
		"inline dots":  "x = {" + strings.Repeat("a.", deep) + "a = 1}",
		"quoted keys":  strings.Repeat(`"a".'b'.`, deep) + "c = 1",
		"arrays of tables": func() string {
			var b strings.Builder
			for i := 1; i < 40; i++ {
				b.WriteString("[[" + strings.Repeat("a.", i) + "a]]\n")
			}
			return b.String()
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			p := loadBomb(t, src, Options{})
			assert.Equal(t, LimitDepth, p.Limit)
		})
	}
}

// Braces in strings and comments are text; no nesting, no refusal.
func TestDepthIgnoresStringsAndComments(t *testing.T) {
	deep := strings.Repeat("{[", 1000)
	src := "version = 1 # " + deep + "\n" +
		"[job.t]\nimage = \"busybox\"\n" +
		"run = [\"echo '" + deep + "'\", '" + deep + "', \"\"\"\n" + deep + "\\\"\"\"\n\"\"\"\", '''\n" + deep + "\n''']\n" +
		"raw = { \"lxc" + strings.Repeat(".a", 100) + "\" = \"" + deep + "\" }\n"
	_, err := loadText(t, src, Options{})
	require.NoError(t, err)
}

// treeDepth is the depth of what the decoder built: 1 for a table of
// scalars.
func treeDepth(v any) int {
	d := 0
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			d = max(d, treeDepth(e))
		}
	case []map[string]any:
		for _, e := range x {
			d = max(d, treeDepth(e))
		}
	case []any:
		for _, e := range x {
			d = max(d, treeDepth(e))
		}
	default:
		return 0
	}
	return d + 1
}

// scannedDepth is the depth scanDepth finds: the least limit it accepts.
func scannedDepth(src string) int {
	for n := 1; ; n++ {
		if _, ok := scanDepth(src, n); ok {
			return n
		}
	}
}

// The scan counts as the decoder nests, for every way TOML nests.
func TestScanDepthMatchesDecoder(t *testing.T) {
	for _, src := range []string{
		"",
		"x = 1",
		"x = 1.5\ny = 1979-05-27T07:32:00.5Z",
		"a.b.c = 1",
		"a . b . 'c.d' = 1",
		`"a.b".c = 1`,
		"x = {}",
		"x = []",
		"x = [[], [[1]]]",
		"x = {a = {b = [1, {c = 2}]}, d.e.f = 3}",
		"x = [{a.b = 1}, {c = 1}]",
		"[a]\nx = 1",
		"[a.b]\nc.d = [{}]",
		"[[a]]\n[[a]]\nx = 1",
		"[[a]]\n[[a.b]]\n[[a.b.c]]\nx = {y = 1}",
		"[a]\n[[a.b]]\n[a.b.c]\nd = 1",
		"x = [\n  1, # ]]]\n  [2],\n]\ny = 2",
		"x = \"\"\"\n{[\"\"\"\ny = '''\n[[{'''\nz = 1",
		"x = { a = 1, b.c = 2 }\n[t]\ny = 1",
		"[ a . b ]\n[[ c ]]\n",
	} {
		var m map[string]any
		_, err := toml.Decode(src, &m)
		require.NoError(t, err, src)
		assert.Equal(t, treeDepth(m), max(1, scannedDepth(src)), "%q", src)
	}
}

func TestFileSizeLimit(t *testing.T) {
	body := "version = 1\n# " + strings.Repeat("x", DefaultMaxFileSize) + "\n"
	p := loadBomb(t, body, Options{})
	assert.Equal(t, LimitFileSize, p.Limit)
	assert.Equal(t, 2, p.Line)
	assert.Equal(t, DefaultMaxFileSize-len("version = 1\n")+1, p.Col, "where the limit is crossed")
	assert.Contains(t, p.String(), "spec file is larger than the limit of 1 MiB")

	// Configurable, and exactly the limit is fine.
	src := "version = 1\n"
	_, err := loadText(t, src, Options{MaxFileSize: int64(len(src))})
	require.NoError(t, err)
	p = loadBomb(t, src+"\n", Options{MaxFileSize: int64(len(src))})
	assert.Equal(t, "spec file is larger than the limit of 12 bytes", p.Msg)
	assert.Equal(t, 2, p.Line)
	assert.Equal(t, 1, p.Col)
}

func TestLimitIsTyped(t *testing.T) {
	inTestdata(t)
	_, err := Load([]string{"specs/bad/five.toml"}, testOptions())
	require.Error(t, err)
	assert.False(t, errors.Is(err, ErrLimit), "an ordinary mistake is not a limit")
}

// Positions on a long line cost linear time: a 256 KiB array on one line
// took 5 s (quadratic column counting), 1 MiB would take over a minute.
func TestLongLineIsLinear(t *testing.T) {
	src := "version = 1\n[job.t]\nimage = \"busybox\"\nrun = [" + strings.Repeat(`"a",`, 1<<16) + "]\n"
	start := time.Now()
	set, err := loadText(t, src, Options{})
	require.NoError(t, err)
	assert.Len(t, set.Jobs[0].Run, 1<<16)
	assert.Less(t, time.Since(start), 2*time.Second)
	pos := scanPositions(src)
	assert.Equal(t, lineCol{4, 8 + 4*(1<<16-1)}, pos[fmt.Sprintf("job.t.run[%d]", 1<<16-1)])
}

// loadTimed loads src and returns its problems, checking that it took
// less than took and allocated under 100 MB (issue 18's figure).
func loadTimed(t *testing.T, src string, took time.Duration) []Problem {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := loadText(t, src, Options{})
	assert.Less(t, time.Since(start), took, "refused at once")
	runtime.ReadMemStats(&after)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(100<<20), "allocated little")
	require.ErrorIs(t, err, ErrLimit)
	var perr *Errors
	require.ErrorAs(t, err, &perr)
	return perr.Problems
}

// The 10^9-variant matrix is refused before it is expanded.
func TestMatrixBomb(t *testing.T) {
	src := "version = 1\n[job.x]\nimage = \"busybox\"\nrun = \"true\"\n[job.x.matrix]\n"
	for _, k := range "abcdefghi" {
		src += string(k) + " = [0,1,2,3,4,5,6,7,8,9]\n"
	}
	ps := loadTimed(t, src, 500*time.Millisecond)
	require.Len(t, ps, 1)
	assert.Equal(t, LimitVariants, ps[0].Limit)
	assert.Equal(t, 5, ps[0].Line)
	assert.Equal(t, "job.x.matrix: matrix expands to 1000000000 variants, over the limit of 1000 per job; use fewer values, or split the job",
		strings.SplitN(ps[0].String(), ": ", 2)[1])

	// More variants than a uint64 holds: no overflow to a small number.
	src = "version = 1\n[job.x]\nimage = \"busybox\"\nrun = \"true\"\n[job.x.matrix]\n"
	for i := range 64 {
		src += fmt.Sprintf("k%d = [0, 1]\n", i)
	}
	ps = loadTimed(t, src, 500*time.Millisecond)
	assert.Equal(t, LimitVariants, ps[0].Limit)
	assert.Contains(t, ps[0].Msg, "matrix expands to more than 18446744073709551615 variants")
}

func TestVariantCount(t *testing.T) {
	keys := func(counts ...int) []matrixKey {
		var out []matrixKey
		for _, c := range counts {
			out = append(out, matrixKey{values: make([]sv, c)})
		}
		return out
	}
	for _, c := range []struct {
		counts    []int
		n         uint64
		saturated bool
	}{
		{nil, 1, false},
		{[]int{3, 0, 4}, 12, false}, // a key without values is reported, not a factor of 0
		{[]int{1000}, 1000, false},
		{[]int{1 << 13, 1 << 13, 1 << 13, 1 << 13, 1 << 11}, 1 << 63, false},
		{[]int{1 << 13, 1 << 13, 1 << 13, 1 << 13, 1 << 12}, ^uint64(0), true},
	} {
		n, saturated := variantCount(keys(c.counts...))
		assert.Equal(t, c.n, n, "%v", c.counts)
		assert.Equal(t, c.saturated, saturated, "%v", c.counts)
	}
}

// 1,000 variants is fine; eleven such jobs are more than a set may hold.
func TestJobsPerSet(t *testing.T) {
	job := func(name string) string {
		return "[job." + name + "]\nimage = \"busybox\"\nrun = \"true\"\n" +
			"matrix = { a = [0,1,2,3,4,5,6,7,8,9], b = [0,1,2,3,4,5,6,7,8,9], c = [0,1,2,3,4,5,6,7,8,9] }\n"
	}
	src := "version = 1\n"
	for i := range 10 {
		src += job(fmt.Sprintf("j%d", i))
	}
	set, err := loadText(t, src, Options{})
	require.NoError(t, err)
	assert.Len(t, set.Jobs, MaxJobs)

	src += job("j10")
	_, err = loadText(t, src, Options{})
	var perr *Errors
	require.ErrorAs(t, err, &perr)
	require.Len(t, perr.Problems, 1)
	p := perr.Problems[0]
	assert.Equal(t, LimitJobs, p.Limit)
	assert.Equal(t, "job.j10", p.Path)
	assert.Equal(t, 42, p.Line)
	assert.Equal(t, "the set expands to more than 10000 jobs here (matrix variants included), the limit per set", p.Msg)
}

// A run line over 64 KiB or an env value over 128 KiB passed validate, then
// failed the job with a bare exit 255 (the kernel refuses the argument).
func TestStringLimits(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	src := "version = 1\n[job.t]\nimage = \"busybox\"\n" +
		"run = [\"echo " + long(MaxRunLine-5) + "\", \"echo " + long(MaxRunLine) + "\"]\n" +
		"env = { OK = \"" + long(MaxEnvValue) + "\", BIG = \"" + long(MaxEnvValue+1) + "\" }\n" +
		"[container.c]\nimage = \"busybox\"\nenv = { BIG = \"" + long(300<<10) + "\" }\n"
	ps := loadTimed(t, src, 5*time.Second)
	var got []string
	for _, p := range ps {
		assert.NotZero(t, p.Limit, "%s", p)
		got = append(got, strings.SplitN(p.String(), ": ", 2)[1])
	}
	assert.Equal(t, []string{
		"job.t.run[1]: run line is 65541 bytes, over the limit of 64 KiB; put a long script in a file, mount it and run that",
		"job.t.env.BIG: env value is 131073 bytes, over the limit of 128 KiB; pass large data in a mounted file",
		"container.c.env.BIG: env value is 307200 bytes, over the limit of 128 KiB; pass large data in a mounted file",
	}, got)
	assert.Equal(t, Problem{File: ps[0].File, Line: 4, Col: 65548, Path: "job.t.run[1]", Limit: LimitRunLine,
		Msg: "run line is 65541 bytes, over the limit of 64 KiB", Hint: runLineHint}, ps[0])
}

func TestHumanBytes(t *testing.T) {
	assert.Equal(t, "1 MiB", humanBytes(1<<20))
	assert.Equal(t, "64 KiB", humanBytes(64<<10))
	assert.Equal(t, "1536 KiB", humanBytes(1536<<10))
	assert.Equal(t, "1000 bytes", humanBytes(1000))
	assert.Equal(t, "1 byte", humanBytes(1))
}

// FuzzLimits: the depth scan never passes a document the decoder would
// nest deeper than MaxDepth (go test -fuzz FuzzLimits ./spec to search
// further). The seed corpus in testdata/fuzz/FuzzLimits holds the hostile
// shapes of issue 18, small; here are the bombs, full size.
func FuzzLimits(f *testing.F) {
	for _, n := range []int{10_000, 100_000} {
		f.Add("version = 1\nx = " + strings.Repeat("{a=", n) + "1" + strings.Repeat("}", n) + "\n")
	}
	f.Fuzz(func(t *testing.T, src string) {
		if where, ok := scanDepth(src, MaxDepth); !ok {
			if lines := strings.Count(src, "\n") + 1; where.line < 1 || where.line > lines || where.col < 1 {
				t.Errorf("refused at %d:%d, outside the file", where.line, where.col)
			}
			return
		}
		var m map[string]any
		if _, err := toml.Decode(src, &m); err == nil {
			if d := treeDepth(m); d > MaxDepth {
				t.Errorf("the scan passed a document %d deep", d)
			}
		}
	})
}

// FuzzLoad: Load refuses or accepts anything, within its limits, without a
// panic. Its seed corpus (testdata/fuzz/FuzzLoad) holds the same shapes.
func FuzzLoad(f *testing.F) {
	f.Add("version = 1\nx = " + strings.Repeat("{a=", 100_000) + "1" + strings.Repeat("}", 100_000) + "\n")
	f.Fuzz(func(t *testing.T, src string) {
		p := filepath.Join(t.TempDir(), "f.toml")
		require.NoError(t, os.WriteFile(p, []byte(src), 0o644))
		set, err := Load([]string{p}, Options{})
		if err == nil && len(set.Jobs) > MaxJobs {
			t.Errorf("%d jobs, over the limit", len(set.Jobs))
		}
	})
}

func TestEscapeE(t *testing.T) {
	assert.Equal(t, `a\x1bb`, escapeE(`a\eb`))
	assert.Equal(t, `a\\eb`, escapeE(`a\\eb`))
	assert.Equal(t, `\\\x1b`, escapeE(`\\\e`))
	assert.Equal(t, `plain`, escapeE(`plain`))
}

// Each variant is its own copy of the job: 1,000 variants of a job with
// 20,000 env keys would be 20 million entries (100 variants of 80,000 took
// 18 s and 600 MB). Refused before expanding.
func TestExpansionBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("[job.t]\nimage = \"busybox\"\nrun = \"true\"\n" +
		"matrix = { a = [0,1,2,3,4,5,6,7,8,9], b = [0,1,2,3,4,5,6,7,8,9], c = [0,1,2,3,4,5,6,7,8,9] }\n[job.t.env]\n")
	for i := range 20_000 {
		fmt.Fprintf(&b, "A%d = 1\n", i)
	}
	ps := loadTimed(t, b.String(), 5*time.Second)
	require.Len(t, ps, 1)
	assert.Equal(t, LimitExpanded, ps[0].Limit)
	assert.Equal(t, "job.t", ps[0].Path)
	assert.Equal(t, 1, ps[0].Line)
	assert.Equal(t, "the set expands to more than 16 MiB here (each job, matrix variant and container copies its env, raw, mounts, artifacts, run lines and ${...} text, profiles' included), the limit per set", ps[0].Msg)

	// ${...} in a long string, with a long value: 800 KB that would become
	// 50 MB per variant. Refused before it is substituted.
	src := "[job.t]\nimage = \"busybox\"\nrun = \"true\"\n" +
		"raw = { \"lxc.x\" = \"" + strings.Repeat("${a}", 200_000) + "\" }\n" +
		"matrix = { a = [\"" + strings.Repeat("v", 240) + "\", \"b\"] }\n"
	ps = loadTimed(t, src, 5*time.Second)
	require.Len(t, ps, 1)
	assert.Equal(t, LimitExpanded, ps[0].Limit)
}

// A profile is copied into every job and container that uses it, as often
// as it is named: counted before merging.
func TestProfileAmplification(t *testing.T) {
	var prof strings.Builder
	prof.WriteString("[profile.p]\nenv = {")
	for i := range 20_000 {
		fmt.Fprintf(&prof, "A%d=1,", i)
	}
	prof.WriteString("}\n")
	many := func(kind string) string {
		var b strings.Builder
		b.WriteString(prof.String())
		for i := range 5_000 {
			fmt.Fprintf(&b, "[%s.x%d]\nimage=\"busybox\"\nprofiles=[\"p\"]\n", kind, i)
			if kind == "job" {
				b.WriteString("run=\"true\"\n")
			}
		}
		return b.String()
	}
	for name, src := range map[string]string{
		"jobs":       many("job"),
		"containers": many("container"),
		"one job":    prof.String() + "[job.t]\nimage=\"busybox\"\nrun=\"true\"\nprofiles=[" + strings.Repeat(`"p",`, 50_000) + "]\n",
	} {
		t.Run(name, func(t *testing.T) {
			ps := loadTimed(t, src, 5*time.Second)
			require.Len(t, ps, 1, "reported once")
			assert.Equal(t, LimitExpanded, ps[0].Limit)
		})
	}
}

// The limits leave room for big real sets: three jobs of 1,000 variants,
// each with 15 env values from a profile, 10 run lines and 5 mounts.
func TestBigSetFits(t *testing.T) {
	var b strings.Builder
	b.WriteString("[profile.p]\nenv = {")
	for i := range 15 {
		fmt.Fprintf(&b, "P%d = \"${a}-${b}\",", i)
	}
	b.WriteString("}\n")
	for j := range 3 {
		fmt.Fprintf(&b, "[job.j%d]\nimage = \"busybox\"\nprofiles = [\"p\"]\nrun = [", j)
		for i := range 10 {
			fmt.Fprintf(&b, "\"make step%d ARCH=${a} GO=${b} ${c}\",", i)
		}
		b.WriteString("]\nmatrix = { a = [0,1,2,3,4,5,6,7,8,9], b = [0,1,2,3,4,5,6,7,8,9], c = [0,1,2,3,4,5,6,7,8,9] }\n")
		for i := range 5 {
			fmt.Fprintf(&b, "[[job.j%d.mount]]\ntype = \"tmpfs\"\ntarget = \"/t%d\"\n", j, i)
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	set, err := loadText(t, b.String(), Options{})
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	assert.Len(t, set.Jobs, 3*MaxVariants)
	assert.Equal(t, "make step9 ARCH=9 GO=9 9", set.Jobs[len(set.Jobs)-1].Run[9])
	t.Logf("allocated %d MB", (after.TotalAlloc-before.TotalAlloc)>>20)
}
