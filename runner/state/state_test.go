package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "state"))
	require.NoError(t, err)
	return s
}

// dirNames lists the state directory, to assert what is left on disk.
func dirNames(t *testing.T, s *Store) []string {
	t.Helper()
	ents, err := os.ReadDir(s.Dir())
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func TestCreateGetUpdateDelete(t *testing.T) {
	s := openTemp(t)
	in := &Record{
		Name: "stint-myproj-test-1a2b", Kind: KindJob, Set: "myproj", Job: "test[go=1.22]",
		SpecHash: "abc", Image: "f00d", Driver: "btrfs", Volume: "stint-myproj-test-1a2b",
		Phase: "creating",
	}
	h, err := s.Create(in)
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), in.Owner, "Create fills in the owner")
	assert.False(t, in.Created.IsZero(), "Create fills in the creation time")
	assert.Equal(t, []string{"stint-myproj-test-1a2b.json", "stint-myproj-test-1a2b.lock"}, dirNames(t, s))

	got, err := s.Get(in.Name)
	require.NoError(t, err)
	assert.Equal(t, in.Created.UnixNano(), got.Created.UnixNano())
	got.Created = in.Created
	assert.Equal(t, *in, got)

	lease := json.RawMessage(`{"bridge":"stint0","ip":"10.88.0.5"}`)
	require.NoError(t, h.Update(func(r *Record) {
		r.Phase = "running"
		r.Mounts = append(r.Mounts, "/var/lib/stint/x/rootfs", "/var/lib/stint/x/rootfs/src")
		r.Network = lease
	}))
	got, err = s.Get(in.Name)
	require.NoError(t, err)
	assert.Equal(t, PhaseRunning, got.Phase)
	assert.Equal(t, []string{"/var/lib/stint/x/rootfs", "/var/lib/stint/x/rootfs/src"}, got.Mounts)
	assert.JSONEq(t, string(lease), string(got.Network))
	assert.Equal(t, got.Phase, h.Record().Phase)

	err = h.Update(func(r *Record) { r.Name = "other" })
	assert.ErrorContains(t, err, "name cannot change")

	list, err := s.List()
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, in.Name, list[0].Name)

	require.NoError(t, h.Delete())
	assert.Empty(t, dirNames(t, s), "Delete leaves nothing behind")
	_, err = s.Get(in.Name)
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorIs(t, h.Update(func(r *Record) {}), ErrClosed)
	assert.ErrorIs(t, h.Delete(), ErrClosed)
	assert.ErrorIs(t, h.Release(), ErrClosed)
}

func TestCreateRefusesTakenName(t *testing.T) {
	s := openTemp(t)
	h, err := s.Create(&Record{Name: "c1", Kind: KindJob})
	require.NoError(t, err)
	_, err = s.Create(&Record{Name: "c1", Kind: KindJob})
	assert.ErrorIs(t, err, ErrExists, "held by a live handle")

	require.NoError(t, h.Release())
	_, err = s.Create(&Record{Name: "c1", Kind: KindJob})
	assert.ErrorIs(t, err, ErrExists, "released but the record is kept")

	got, err := s.Get("c1")
	require.NoError(t, err)
	assert.Zero(t, got.Owner, "Release clears the owner")
}

func TestBadNames(t *testing.T) {
	s := openTemp(t)
	for _, n := range []string{"", ".hidden", "a/b", "../x", "a\x00b", string(make([]byte, 201))} {
		_, err := s.Create(&Record{Name: n})
		assert.ErrorIs(t, err, ErrBadName, "%q", n)
		_, err = s.Get(n)
		assert.ErrorIs(t, err, ErrBadName, "%q", n)
		_, err = s.Claim(n)
		assert.ErrorIs(t, err, ErrBadName, "%q", n)
	}
	assert.Empty(t, dirNames(t, s))
	_, err := os.Stat(filepath.Join(filepath.Dir(s.Dir()), "x.json"))
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing written outside the directory")
}

// The fsync policy of the package doc: 2 on Create, none for phase/mount/
// network updates, 2 when a reboot-surviving field changes, none on Delete.
func TestSyncPolicy(t *testing.T) {
	s := openTemp(t)
	h, err := s.Create(&Record{Name: "c1", Kind: KindJob, Driver: "dir", Volume: "c1"})
	require.NoError(t, err)
	assert.Equal(t, Stats{Writes: 1, Syncs: 2}, s.Stats())

	for _, ph := range []string{"clone", "configure", "start", "exec", "stop"} {
		require.NoError(t, h.Update(func(r *Record) { r.Phase = Phase(ph); r.Mounts = append(r.Mounts, "/m/"+ph) }))
	}
	require.NoError(t, h.Update(func(r *Record) { r.Network = json.RawMessage(`{"x":1}`) }))
	assert.Equal(t, Stats{Writes: 7, Syncs: 2}, s.Stats())

	require.NoError(t, h.Update(func(r *Record) { r.Kept = true }))
	assert.Equal(t, Stats{Writes: 8, Syncs: 4}, s.Stats())
	require.NoError(t, h.Update(func(r *Record) { r.Volume = "other" }))
	assert.Equal(t, Stats{Writes: 9, Syncs: 6}, s.Stats())

	require.NoError(t, h.Delete())
	assert.Equal(t, int64(6), s.Stats().Syncs)
}

// CreateOrdered journals the record like Create, without fsyncs; later
// updates follow the same policy.
func TestCreateOrderedSyncsNothing(t *testing.T) {
	s := openTemp(t)
	h, err := s.CreateOrdered(&Record{Name: "c1", Kind: KindJob, Driver: "btrfs", Volume: "c1"})
	require.NoError(t, err)
	assert.Equal(t, Stats{Writes: 1, Syncs: 0}, s.Stats())
	got, err := s.Get("c1")
	require.NoError(t, err)
	assert.Equal(t, "btrfs", got.Driver)
	_, err = s.CreateOrdered(&Record{Name: "c1", Kind: KindJob})
	assert.ErrorIs(t, err, ErrExists)
	require.NoError(t, h.Update(func(r *Record) { r.Kept = true }))
	assert.Equal(t, int64(2), s.Stats().Syncs)
}

func TestClaim(t *testing.T) {
	s := openTemp(t)
	_, err := s.Claim("nope")
	assert.ErrorIs(t, err, ErrNotFound)

	h, err := s.Create(&Record{Name: "c1", Kind: KindJob, Owner: 999999})
	require.NoError(t, err)
	// flock belongs to the open file description: a second handle in the
	// same process is excluded like another process would be.
	_, err = s.Claim("c1")
	assert.ErrorIs(t, err, ErrBusy)

	// Simulate a dead owner: drop the lock without Release/Delete.
	require.NoError(t, h.lock.Close())
	c, err := s.Claim("c1")
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), c.Record().Owner)
	got, err := s.Get("c1")
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), got.Owner, "the claim is written")
	_, err = s.Claim("c1")
	assert.ErrorIs(t, err, ErrBusy)
	require.NoError(t, c.Delete())
	assert.Empty(t, dirNames(t, s))
}

func TestOrphans(t *testing.T) {
	s := openTemp(t)
	mk := func(r Record) *Handle {
		h, err := s.Create(&r)
		require.NoError(t, err)
		return h
	}
	live := mk(Record{Name: "live", Kind: KindJob})
	defer live.Delete()
	require.NoError(t, mk(Record{Name: "dead-job", Kind: KindJob}).lock.Close())
	require.NoError(t, mk(Record{Name: "dead-exec", Kind: KindExec}).lock.Close())
	require.NoError(t, mk(Record{Name: "kept", Kind: KindJob, Kept: true}).Release())
	require.NoError(t, mk(Record{Name: "web", Kind: KindContainer}).Release())
	// A record torn by a power cut, with its lock file gone too.
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), "torn.json"), nil, 0o600))

	orphans, err := s.Orphans()
	require.NoError(t, err)
	var names []string
	for _, r := range orphans {
		names = append(names, r.Name)
	}
	assert.Equal(t, []string{"dead-exec", "dead-job", "torn"}, names)
	assert.Equal(t, PhaseCorrupt, orphans[2].Phase)

	// Probing did not steal anything: every orphan can be claimed and deleted.
	for _, n := range names {
		h, err := s.Claim(n)
		require.NoError(t, err, n)
		require.NoError(t, h.Delete(), n)
	}
	list, err := s.List()
	require.NoError(t, err)
	assert.Len(t, list, 3, "live, kept and web remain")
}

func TestCorruptRecord(t *testing.T) {
	s := openTemp(t)
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), "c1.json"), []byte(`{"name":"c1","kind":`), 0o600))
	got, err := s.Get("c1")
	require.NoError(t, err)
	assert.Equal(t, Record{Name: "c1", Phase: PhaseCorrupt}, got)
	// A record whose content names another container is not trusted either.
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), "c2.json"), []byte(`{"name":"c9"}`), 0o600))
	got, err = s.Get("c2")
	require.NoError(t, err)
	assert.Equal(t, PhaseCorrupt, got.Phase)
}

func TestSweep(t *testing.T) {
	s := openTemp(t)
	held, err := s.Create(&Record{Name: "held", Kind: KindJob})
	require.NoError(t, err)
	defer held.Delete()
	kept, err := s.Create(&Record{Name: "kept", Kind: KindJob, Kept: true})
	require.NoError(t, err)
	require.NoError(t, kept.Release())
	// Leftovers of crashes: a lock without a record, a half-written temp file.
	for _, n := range []string{"gone.lock", ".gone2.json.tmp", ".kept.json.tmp"} {
		require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), n), []byte("x"), 0o600))
	}
	// A live record's temp file is a crash's only once it is old (a writer
	// renames its own at once); a fresh one is left to the next sweep.
	require.NoError(t, s.Sweep())
	assert.Equal(t, []string{".kept.json.tmp", "held.json", "held.lock", "kept.json", "kept.lock"}, dirNames(t, s))
	old := time.Now().Add(-2 * staleTemp)
	require.NoError(t, os.Chtimes(filepath.Join(s.Dir(), ".kept.json.tmp"), old, old))
	require.NoError(t, s.Sweep())
	assert.Equal(t, []string{"held.json", "held.lock", "kept.json", "kept.lock"}, dirNames(t, s))
}

// Many goroutines race Create/Delete on one name (each Delete unlinks the
// lock file while someone may be about to flock the old inode): at no time may
// two of them believe they own it.
func TestExclusiveUnderChurn(t *testing.T) {
	s := openTemp(t)
	var holders, wins atomic.Int32
	var wg sync.WaitGroup
	const want = 40
	deadline := time.Now().Add(20 * time.Second) // only against a hang
	for range 8 {
		wg.Go(func() {
			for wins.Load() < want && time.Now().Before(deadline) {
				h, err := s.Create(&Record{Name: "one", Kind: KindJob})
				if errors.Is(err, ErrExists) {
					time.Sleep(20 * time.Microsecond)
					continue
				}
				if !assert.NoError(t, err) {
					return
				}
				if n := holders.Add(1); n != 1 {
					t.Errorf("%d simultaneous owners", n)
				}
				wins.Add(1)
				time.Sleep(10 * time.Microsecond)
				holders.Add(-1)
				assert.NoError(t, h.Delete())
			}
		})
	}
	wg.Wait()
	assert.GreaterOrEqual(t, wins.Load(), int32(want), "the name changed hands many times")
	assert.Empty(t, dirNames(t, s))
}

// BenchmarkLifecycle is one job's journal traffic: Create, five phase
// updates, Delete. "fsync-every-update" changes a durable field each time,
// to show what fsyncing every write would cost. The numbers are in the
// package doc.
func BenchmarkLifecycle(b *testing.B) {
	for _, bc := range []struct {
		name string
		mut  func(r *Record, i int)
	}{
		{"rename-only-updates", func(r *Record, i int) { r.Phase = Phase(fmt.Sprint("phase", i)) }},
		{"fsync-every-update", func(r *Record, i int) { r.Volume = fmt.Sprint("vol", i) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := Open(b.TempDir())
			require.NoError(b, err)
			for b.Loop() {
				h, err := s.Create(&Record{Name: "job", Kind: KindJob, Driver: "btrfs", Volume: "job"})
				require.NoError(b, err)
				for i := range 5 {
					require.NoError(b, h.Update(func(r *Record) { bc.mut(r, i) }))
				}
				require.NoError(b, h.Delete())
			}
			b.ReportMetric(float64(s.Stats().Syncs)/float64(b.N), "fsyncs/op")
		})
	}
}

// BenchmarkUpdatePhase is one rename-only update: no fsync.
func BenchmarkUpdatePhase(b *testing.B) {
	s, err := Open(b.TempDir())
	require.NoError(b, err)
	h, err := s.Create(&Record{Name: "job", Kind: KindJob})
	require.NoError(b, err)
	defer h.Delete()
	for b.Loop() {
		require.NoError(b, h.Update(func(r *Record) { r.Phase = "running" }))
	}
}
