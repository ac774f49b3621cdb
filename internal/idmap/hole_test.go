package idmap

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type holeCase struct {
	Name string   `json:"name"`
	Map  Map      `json:"map"`
	UID  uint32   `json:"uid"`
	GID  uint32   `json:"gid"`
	LXC  []string `json:"lxc"`
	Err  string   `json:"err"`
}

func loadHoleCases(t *testing.T) []holeCase {
	t.Helper()
	b, err := os.ReadFile("testdata/holes.json")
	require.NoError(t, err)
	var out []holeCase
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// TestWithHole renders every case of testdata/holes.json as lxc.idmap lines,
// or refuses it with the exact error.
func TestWithHole(t *testing.T) {
	for _, c := range loadHoleCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			h, err := c.Map.WithHole(c.UID, c.GID)
			if c.Err != "" {
				require.Error(t, err)
				assert.Equal(t, c.Err, err.Error())
				var he *HoleError
				if errors.As(err, &he) {
					assert.ErrorIs(t, err, ErrBadHole)
				} else {
					assert.ErrorIs(t, err, ErrNoRange)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.LXC, h.LXC())
			checkRanges(t, "uid", h.UIDRanges(), c.Map.HostUID, c.Map.Size, c.UID)
			checkRanges(t, "gid", h.GIDRanges(), c.Map.HostGID, c.Map.Size, c.GID)
		})
	}
}

// checkRanges: the ranges are disjoint on both sides (the kernel refuses
// overlaps), hold every container id below size and the hole, map the hole
// to itself and every other id as the plain map would.
func checkRanges(t *testing.T, kind string, rs []Range, hostLo, size, hole uint32) {
	t.Helper()
	assert.LessOrEqual(t, len(rs), 340, "%s: the kernel takes at most 340 ranges", kind)
	for i, a := range rs {
		assert.NotZero(t, a.Count, "%s range %d is empty", kind, i)
		for _, b := range rs[i+1:] {
			assert.False(t, overlap(a.Inside, a.Count, b.Inside, b.Count), "%s: inside overlap %v %v", kind, a, b)
			assert.False(t, overlap(a.Host, a.Count, b.Host, b.Count), "%s: host overlap %v %v", kind, a, b)
		}
	}
	plain := Map{HostUID: hostLo, Size: size}
	for _, id := range []uint32{0, 1, hole - 1, hole, hole + 1, size - 1, size} {
		got, ok := shift(rs, id)
		switch {
		case id == hole:
			assert.True(t, ok && got == hole, "%s %d: the hole maps to %d, %v", kind, id, got, ok)
		case id < size:
			want, _ := plain.ShiftUID(id)
			assert.True(t, ok && got == want, "%s %d: %d, %v; want %d", kind, id, got, ok, want)
		default:
			assert.False(t, ok, "%s %d is mapped", kind, id)
		}
	}
}

func overlap(a, an, b, bn uint32) bool {
	return uint64(a) < uint64(b)+uint64(bn) && uint64(b) < uint64(a)+uint64(an)
}

// TestHoledShift: Holed's ShiftUID and ShiftGID go through the hole.
func TestHoledShift(t *testing.T) {
	h, err := Default.WithHole(4242, 5151)
	require.NoError(t, err)
	for _, c := range []struct {
		fn       func(uint32) (uint32, bool)
		in, want uint32
		ok       bool
	}{
		{h.ShiftUID, 4242, 4242, true},
		{h.ShiftUID, 0, 100000, true},
		{h.ShiftUID, 5151, 105151, true},
		{h.ShiftUID, 70000, 70000, false},
		{h.ShiftGID, 5151, 5151, true},
		{h.ShiftGID, 4242, 104242, true},
	} {
		got, ok := c.fn(c.in)
		assert.Equal(t, c.want, got, "id %d", c.in)
		assert.Equal(t, c.ok, ok, "id %d", c.in)
	}
}

// TestReserve: root:ID:1 is appended to each file unless root's entries
// cover the id already, once however often it runs; other users' entries
// don't count.
func TestReserve(t *testing.T) {
	fixtures, err := filepath.Glob("testdata/reserve/*.sub")
	require.NoError(t, err)
	require.NotEmpty(t, fixtures)
	for _, f := range fixtures {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in, err := os.ReadFile(f)
			require.NoError(t, err)
			want, err := os.ReadFile(f + ".golden")
			require.NoError(t, err)
			dir := t.TempDir()
			u, g := filepath.Join(dir, "subuid"), filepath.Join(dir, "subgid")
			require.NoError(t, os.WriteFile(u, in, 0o644))
			require.NoError(t, os.WriteFile(g, in, 0o644))
			for range 2 {
				require.NoError(t, Reserve(u, g, 4242, 4242))
			}
			for _, p := range []string{u, g} {
				got, err := os.ReadFile(p)
				require.NoError(t, err)
				assert.Equal(t, string(want), string(got))
			}
			// The range Load picks is still the big one.
			m, err := Load(u, g)
			require.NoError(t, err)
			assert.Equal(t, Map{HostUID: 100000, HostGID: 100000, Size: 65536}, m)
		})
	}
}

// TestReserveMissingFile: a missing file is made with root's entry.
func TestReserveMissingFile(t *testing.T) {
	dir := t.TempDir()
	u, g := filepath.Join(dir, "subuid"), filepath.Join(dir, "subgid")
	require.NoError(t, Reserve(u, g, 1234, 2345))
	b, err := os.ReadFile(u)
	require.NoError(t, err)
	assert.Equal(t, "root:1234:1\n", string(b))
	b, err = os.ReadFile(g)
	require.NoError(t, err)
	assert.Equal(t, "root:2345:1\n", string(b))
}

// TestEnsureAppendsOnANewLine: root's default range goes on a line of its
// own after a last line without its newline (it used to run into it).
func TestEnsureAppendsOnANewLine(t *testing.T) {
	dir := t.TempDir()
	u, g := filepath.Join(dir, "subuid"), filepath.Join(dir, "subgid")
	require.NoError(t, os.WriteFile(u, []byte("alice:200000:65536"), 0o644))
	require.NoError(t, os.WriteFile(g, []byte("alice:200000:65536"), 0o644))
	m, err := Ensure(u, g)
	require.NoError(t, err)
	assert.Equal(t, Default, m)
	b, err := os.ReadFile(u)
	require.NoError(t, err)
	assert.Equal(t, "alice:200000:65536\nroot:100000:65536\n", string(b))
}
