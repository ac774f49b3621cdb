package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"
	"github.com/google/renameio/v2"

	"github.com/stintdev/stint/internal/sysexec"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
	"github.com/stintdev/stint/storage"
)

// Caches that a failing job cannot poison (docs/storage.md, "Cache volumes").
//
// A cache volume is a chain of read-only generations, each a golden volume
// of the job's storage pool, and a pointer naming the current one:
//
//	<root>/cache/.gen/<name>.json              the pointer (cachePointer), replaced by rename
//	<root>/cache/.gen/<name>.lock              flock: reading the pointer and cloning, committing
//	<root>/cache/.privileged/.gen/<name>.*     the same for privileged jobs' caches
//	<pool>/volumes/cache.u.<name>.<hex>        a generation (cache.p.… for privileged jobs)
//	<pool>/volumes/<container>.cache<i>        a container's own copy: a clone of a generation
//
// A job's cache mount is its own clone of the current generation (a
// copy-on-write snapshot on btrfs, zfs and lvm, an overlay on overlay, a
// copy on dir). When the job ends and its mount's commit policy says so,
// the copy is snapshotted into a new generation (storage.Snapshotter) and
// the pointer is renamed over to name it: a later job clones either the old
// generation or the new one, whole, never a half-written cache. An old
// generation is destroyed once no copy is cloned from it. The copies are
// journalled in the container's record before they exist, so that teardown
// and `stint gc` remove them on every path; gc never commits.

// cacheKey names one cache: privileged jobs' caches are kept apart (their
// files belong to host root, unprivileged jobs' to the id map's root).
type cacheKey struct {
	name       string
	privileged bool
}

func (k cacheKey) String() string { return k.name }

// genPrefix is what the ids of k's generations start with.
func (k cacheKey) genPrefix() string {
	tag := "u"
	if k.privileged {
		tag = "p"
	}
	return "cache." + tag + "." + k.name + "."
}

// newGen is a fresh generation id of k.
func (k cacheKey) newGen() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return k.genPrefix() + hex.EncodeToString(b[:])
}

// parseGen tells the cache of generation id; ok is false for any other volume.
func parseGen(id string) (k cacheKey, ok bool) {
	rest, found := strings.CutPrefix(id, "cache.")
	if !found || len(rest) < 2+1+12 {
		return cacheKey{}, false
	}
	tag, rest := rest[:2], rest[2:]
	if tag != "u." && tag != "p." {
		return cacheKey{}, false
	}
	name, suffix := rest[:len(rest)-13], rest[len(rest)-13:]
	if suffix[0] != '.' || !cacheName.MatchString(name) {
		return cacheKey{}, false
	}
	if _, err := hex.DecodeString(suffix[1:]); err != nil {
		return cacheKey{}, false
	}
	return cacheKey{name: name, privileged: tag == "p."}, true
}

// cacheCopyID is the volume id of container's own copy of its i-th mount.
func cacheCopyID(container string, i int) string { return fmt.Sprintf("%s.cache%d", container, i) }

// isCacheCopyOf reports whether volume id is one of container's copies.
func isCacheCopyOf(id, container string) bool {
	n, ok := strings.CutPrefix(id, container+".cache")
	return ok && n != "" && strings.Trim(n, "0123456789") == ""
}

// cacheCopyIDs are the copies container's cache mounts get (journalled in
// its record before any exists).
func cacheCopyIDs(container string, mounts []spec.Mount) []string {
	var ids []string
	for i, m := range mounts {
		if m.Type == spec.MountCache {
			ids = append(ids, cacheCopyID(container, i))
		}
	}
	return ids
}

// cachePointer is a cache's current generation.
type cachePointer struct {
	Volume    string    `json:"volume"`             // the generation's volume id
	Driver    string    `json:"driver"`             // the storage driver holding it
	Committed time.Time `json:"committed"`          // when it became current
	By        string    `json:"by,omitempty"`       // the container whose copy it is ("" for the first)
	Imported  string    `json:"imported,omitempty"` // the older stint's shared directory it was seeded from
}

// cacheBase is the directory of k's legacy shared directory and of its
// pointer's directory (.gen).
func (r *Runner) cacheBase(k cacheKey) string {
	if k.privileged {
		return filepath.Join(r.CacheDir, ".privileged")
	}
	return r.CacheDir
}

func (r *Runner) pointerPath(k cacheKey) string {
	return filepath.Join(r.cacheBase(k), ".gen", k.name+".json")
}

// errCacheBusy: another process holds a cache's lock (tryLockCache).
var errCacheBusy = errors.New("cache volume busy")

// lockCache takes k's lock (across processes), waiting for it; the func
// releases it.
func (r *Runner) lockCache(ctx context.Context, k cacheKey) (func(), error) {
	return r.takeCacheLock(ctx, k, true)
}

// tryLockCache is lockCache without waiting: errCacheBusy when it's held.
func (r *Runner) tryLockCache(ctx context.Context, k cacheKey) (func(), error) {
	return r.takeCacheLock(ctx, k, false)
}

func (r *Runner) takeCacheLock(ctx context.Context, k cacheKey, wait bool) (func(), error) {
	dir := filepath.Join(r.cacheBase(k), ".gen")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache volume %s: %w", k, err)
	}
	l := flock.New(filepath.Join(dir, k.name+".lock"))
	var ok bool
	var err error
	if wait {
		ok, err = l.TryLockContext(ctx, 10*time.Millisecond)
	} else if ok, err = l.TryLock(); err == nil && !ok {
		return nil, fmt.Errorf("cache volume %s: %w", k, errCacheBusy)
	}
	if err != nil || !ok {
		return nil, fmt.Errorf("lock cache volume %s: %w", k, errors.Join(err, ctx.Err()))
	}
	return func() { _ = l.Unlock() }, nil
}

// readPointer reads k's pointer; ok is false when k has none.
func (r *Runner) readPointer(k cacheKey) (p cachePointer, ok bool, err error) {
	b, err := os.ReadFile(r.pointerPath(k))
	if errors.Is(err, fs.ErrNotExist) {
		return p, false, nil
	}
	if err == nil {
		err = json.Unmarshal(b, &p)
	}
	if err != nil {
		return p, false, fmt.Errorf("cache volume %s: read %s: %w", k, r.pointerPath(k), err)
	}
	return p, true, nil
}

// writePointer makes p k's current generation: one rename, so a reader
// sees the old pointer or the new one.
func (r *Runner) writePointer(k cacheKey, p cachePointer) error {
	b, err := json.Marshal(p)
	if err == nil {
		err = renameio.WriteFile(r.pointerPath(k), append(b, '\n'), 0o600)
	}
	if err != nil {
		return fmt.Errorf("cache volume %s: write %s: %w", k, r.pointerPath(k), err)
	}
	return nil
}

// cacheMount is a container's own copy of cache mount m, at its rootfs.
func (r *Runner) cacheMount(ctx context.Context, req Request, i int, m spec.Mount) (string, error) {
	if !cacheName.MatchString(m.Name) || len(m.Name) > 64 {
		return "", fmt.Errorf("cache volume %q: invalid name", m.Name)
	}
	if r.CacheDir == "" {
		return "", fmt.Errorf("cache volume %s: no cache directory configured", m.Name)
	}
	id := cacheCopyID(req.Container, i)
	// A long-lived container is defined again at every start: it keeps
	// the copy it got when it was made.
	if v, err := r.Storage.Get(ctx, id); err == nil {
		return v.Rootfs, nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return "", fmt.Errorf("cache volume %s: %w", m.Name, err)
	}
	k := cacheKey{name: m.Name, privileged: req.Privileged}
	unlock, err := r.lockCache(ctx, k)
	if err != nil {
		return "", err
	}
	defer unlock()
	gen, err := r.currentGen(ctx, k)
	if err != nil {
		return "", err
	}
	v, err := r.Storage.Clone(ctx, gen, id)
	if err != nil {
		return "", fmt.Errorf("cache volume %s: copy generation %s for %s: %w", k, gen, req.Container, err)
	}
	return v.Rootfs, nil
}

// currentGen is k's current generation, made (empty, or seeded from an
// older stint's shared directory) when k has none in this pool. The
// caller holds k's lock.
func (r *Runner) currentGen(ctx context.Context, k cacheKey) (string, error) {
	p, ok, err := r.readPointer(k)
	if err != nil {
		return "", err
	}
	if ok && p.Driver == r.Storage.Name() {
		_, err := r.Storage.Get(ctx, p.Volume)
		if err == nil {
			return p.Volume, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return "", fmt.Errorf("cache volume %s: %w", k, err)
		}
		// Another pool's (a spec's other [storage] path): start anew here.
	}
	uid, gid := int(r.IDMap.HostUID), int(r.IDMap.HostGID)
	if k.privileged {
		uid, gid = 0, 0
	}
	legacy := filepath.Join(r.cacheBase(k), k.name)
	imported := ""
	if st, err := os.Lstat(legacy); err == nil && st.IsDir() {
		imported = legacy
	}
	fill := storage.SourceFunc(func(ctx context.Context, dir string) error {
		if imported != "" {
			_, err := sysexec.Run(ctx, "cp", "-a", "--reflink=auto", "--", imported+"/.", dir)
			return err
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			return err
		}
		return os.Chown(dir, uid, gid)
	})
	id := k.newGen()
	if _, err := r.Storage.CreateGolden(ctx, id, fill, storage.GoldenOptions{}); err != nil {
		return "", fmt.Errorf("cache volume %s: %w", k, err)
	}
	np := cachePointer{Volume: id, Driver: r.Storage.Name(), Committed: time.Now().UTC(), Imported: imported}
	if err := r.writePointer(k, np); err != nil {
		return "", errors.Join(err, r.Storage.Destroy(context.WithoutCancel(ctx), id))
	}
	if ok {
		r.dropStale(ctx, k, p.Volume)
	}
	return id, nil
}

// commits reports whether a copy under policy commits after outcome:
// on_success after a pass; always after any end of the job's own (passed,
// failed, timed out), not after stint's own failure or an interruption.
func commits(policy string, o Outcome) bool {
	switch policy {
	case spec.CommitNever:
		return false
	case spec.CommitAlways:
		return o == OutcomePassed || o == OutcomeFailed || o == OutcomeTimeout
	default:
		return o == OutcomePassed
	}
}

// commitCaches makes the copy of each of req's cache mounts whose policy
// says so after outcome the next generation of its cache. The container is
// stopped: nothing writes to the copies any more.
func (r *Runner) commitCaches(ctx context.Context, req Request, outcome Outcome) error {
	if r.Storage == nil || usesVolumes(r) {
		return nil
	}
	var errs []error
	for i, m := range req.Mounts {
		// A read-only mount's copy is the generation it came from.
		if m.Type != spec.MountCache || m.Readonly || !commits(m.Commit, outcome) {
			continue
		}
		k := cacheKey{name: m.Name, privileged: req.Privileged}
		if err := r.commitCache(ctx, k, cacheCopyID(req.Container, i), req.Container); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// commitCache snapshots copy into a new generation of k and points k at it.
// It holds k's lock throughout, so that a gc pruning k never takes the new
// generation for an orphan before the pointer names it.
func (r *Runner) commitCache(ctx context.Context, k cacheKey, copyID, container string) error {
	snap, ok := r.Storage.(storage.Snapshotter)
	if !ok {
		return fmt.Errorf("commit cache volume %s: storage driver %s cannot snapshot", k, r.Storage.Name())
	}
	unlock, err := r.lockCache(ctx, k)
	if err != nil {
		return err
	}
	defer unlock()
	old, hadOld, err := r.readPointer(k)
	if err != nil {
		return err
	}
	gen := k.newGen()
	if _, err := snap.Snapshot(ctx, copyID, gen); err != nil {
		return fmt.Errorf("commit cache volume %s: %w", k, err)
	}
	np := cachePointer{Volume: gen, Driver: r.Storage.Name(), Committed: time.Now().UTC(), By: container}
	if err := r.writePointer(k, np); err != nil {
		return fmt.Errorf("commit cache volume %s: %w", k, errors.Join(err, r.Storage.Destroy(context.WithoutCancel(ctx), gen)))
	}
	if hadOld {
		r.dropStale(ctx, k, old.Volume)
	}
	return nil
}

// dropStale destroys generation gen of k unless it is current or copies
// are cloned from it (their teardown tries again). The caller holds k's lock.
func (r *Runner) dropStale(ctx context.Context, k cacheKey, gen string) {
	if p, ok, err := r.readPointer(k); err != nil || (ok && p.Volume == gen) {
		return
	}
	if kk, ok := parseGen(gen); !ok || kk != k {
		return // not a generation of k: never destroy it
	}
	_ = r.Storage.Destroy(ctx, gen) // ErrInUse: a copy's teardown drops it
}

// dropCacheCopies destroys container rec's own cache copies: those its
// record names and any other named after it (a torn record's; a long-lived
// container's mount added in place), then each generation they came from
// that is no longer current and has no other copy.
func (r *Runner) dropCacheCopies(ctx context.Context, rec state.Record, corrupt bool) []error {
	if r.Storage == nil || (len(rec.Caches) == 0 && !corrupt && rec.Kind != state.KindContainer) {
		return nil // a job without cache mounts: no walk of the pool
	}
	want := map[string]bool{}
	for _, id := range rec.Caches {
		want[id] = true
	}
	parents := map[string]string{}
	err := r.Storage.Walk(ctx, func(v storage.Volume) error {
		if v.Kind == storage.KindClone && (want[v.ID] || isCacheCopyOf(v.ID, rec.Name)) {
			parents[v.ID] = v.Parent
		}
		return nil
	})
	if err != nil {
		return []error{err}
	}
	var errs []error
	for id, parent := range parents {
		if err := r.Storage.Destroy(ctx, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
			errs = append(errs, fmt.Errorf("destroy cache copy %s: %w", id, err))
			continue
		}
		k, ok := parseGen(parent)
		if !ok {
			continue
		}
		if unlock, err := r.lockCache(ctx, k); err == nil {
			r.dropStale(ctx, k, parent)
			unlock()
		}
	}
	return errs
}

// pruneCaches destroys every generation that is not its cache's current
// one and has no copy: what a crash between a commit's snapshot and its
// pointer, or a teardown that could not drop a generation, left (gc).
func (r *Runner) pruneCaches(ctx context.Context, res *GCResult) {
	if r.Storage == nil || r.CacheDir == "" {
		return
	}
	// gc runs before every `stint run`: a root that never had a cache
	// (no pointer directory) costs no walk of the pool.
	_, errU := os.Stat(filepath.Join(r.cacheBase(cacheKey{}), ".gen"))
	_, errP := os.Stat(filepath.Join(r.cacheBase(cacheKey{privileged: true}), ".gen"))
	if errU != nil && errP != nil {
		return
	}
	gens := map[cacheKey][]string{}
	used := map[string]bool{}
	err := r.Storage.Walk(ctx, func(v storage.Volume) error {
		if k, ok := parseGen(v.ID); ok && v.Kind == storage.KindGolden {
			gens[k] = append(gens[k], v.ID)
		}
		if v.Kind == storage.KindClone {
			used[v.Parent] = true
		}
		return nil
	})
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
		return
	}
	for k, ids := range gens {
		// A cache whose lock is held is committing or being cloned: the
		// next gc prunes it (gc runs before every `stint run`).
		unlock, err := r.tryLockCache(ctx, k)
		if errors.Is(err, errCacheBusy) {
			continue
		}
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
			continue
		}
		for _, id := range ids {
			if used[id] {
				continue
			}
			if p, ok, err := r.readPointer(k); err == nil && (!ok || p.Volume != id) {
				if err := r.Storage.Destroy(ctx, id); err == nil {
					res.Removed = append(res.Removed, "cache generation "+id)
				}
			}
		}
		unlock()
	}
}

// usesVolumes reports whether r's runtime keeps cache volumes itself (a
// remote's custom volumes) instead of stint's storage pool.
func usesVolumes(r *Runner) bool { return container.CapabilitiesOf(r.Runtime).Volumes }

// CommitUnsupportedError refuses a cache mount's commit key on a runtime
// that keeps cache volumes itself (an LXD remote): those are shared and
// written in place, and a job asking for a commit policy must not get
// silently less. It is a usage error (exit 2).
type CommitUnsupportedError struct {
	Job    string
	Pos    spec.Pos
	Target string
	Remote string
}

func (e *CommitUnsupportedError) Error() string {
	return fmt.Sprintf("%s:%d: job %s: cache mount %s: commit needs stint's own storage pool; remote %s keeps cache volumes shared and written in place (drop commit, or run the job locally)",
		e.Pos.File, e.Pos.Line, e.Job, e.Target, e.Remote)
}

// ExitCode makes it a usage error.
func (e *CommitUnsupportedError) ExitCode() int { return 2 }

// refuseCommit refuses jobs whose cache mounts name a commit policy when r
// can't honour it, before any job starts.
func (r *Runner) refuseCommit(jobs []spec.Job) error {
	if !usesVolumes(r) {
		return nil
	}
	for _, j := range jobs {
		for _, m := range j.Mounts {
			if m.Type == spec.MountCache && m.Commit != "" {
				return &CommitUnsupportedError{Job: j.Name, Pos: j.Pos, Target: m.Target, Remote: r.Remote}
			}
		}
	}
	return nil
}
