package runner

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/stintdev/stint/storage"
)

// goldenID names the golden volume of the image with fingerprint fp for
// containers of the id map with key mapKey ("priv" for privileged ones):
// differently shifted goldens of one image never share a name.
func goldenID(fp, mapKey string) string {
	return goldenPrefix(fp) + mapKey
}

// goldenPrefix is what the ids of every golden volume of image fp start
// with (half the fingerprint keeps ids short and still unique).
func goldenPrefix(fp string) string {
	if len(fp) > 32 {
		fp = fp[:32]
	}
	return "golden-" + fp + "-" // repairGoldens knows golden-*
}

// GoldenInUseError refuses to destroy an image's golden volumes while
// containers are cloned from them; it matches storage.ErrInUse.
type GoldenInUseError struct {
	Fingerprint string
	Clones      map[string][]string // golden volume id → its clones (container names), sorted
}

func (e *GoldenInUseError) Error() string {
	ids := make([]string, 0, len(e.Clones))
	for id := range e.Clones {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var parts []string
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("%s by %s", id, strings.Join(e.Clones[id], ", ")))
	}
	return fmt.Sprintf("golden volumes of image %s are in use: %s", shortFP(e.Fingerprint), strings.Join(parts, "; "))
}

// Unwrap makes errors.Is(err, storage.ErrInUse) true.
func (e *GoldenInUseError) Unwrap() error { return storage.ErrInUse }

// DestroyGoldens destroys every golden volume of the image with
// fingerprint fp in drv, for every id map, and returns their ids. When one
// has clones (a running job, a long-lived container) it destroys none and
// returns a *GoldenInUseError naming them. Goldens whose record is corrupt
// are destroyed too.
func DestroyGoldens(ctx context.Context, drv storage.Driver, fp string) ([]string, error) {
	prefix := goldenPrefix(fp)
	var goldens []string
	clones := map[string][]string{}
	err := drv.Walk(ctx, func(v storage.Volume) error {
		switch {
		case v.Kind == storage.KindGolden && strings.HasPrefix(v.ID, prefix):
			goldens = append(goldens, v.ID)
		case v.Kind == storage.KindClone && strings.HasPrefix(v.Parent, prefix):
			clones[v.Parent] = append(clones[v.Parent], v.ID)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("golden volumes of image %s: %w", shortFP(fp), err)
	}
	if len(clones) > 0 {
		for _, c := range clones {
			sort.Strings(c)
		}
		return nil, &GoldenInUseError{Fingerprint: fp, Clones: clones}
	}
	// Walk skips goldens with a corrupt record; they go too.
	bad, err := storage.Corrupt(drv)
	if err != nil {
		return nil, fmt.Errorf("golden volumes of image %s: %w", shortFP(fp), err)
	}
	for _, ce := range bad {
		if strings.HasPrefix(ce.ID, prefix) {
			goldens = append(goldens, ce.ID)
		}
	}
	var gone []string
	for _, id := range goldens {
		// A clone made since the walk makes the driver refuse: ErrInUse.
		if err := drv.Destroy(ctx, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return gone, fmt.Errorf("destroy golden volume %s of image %s: %w", id, shortFP(fp), err)
		}
		gone = append(gone, id)
	}
	return gone, nil
}

// shortFP is a fingerprint's usual 12-digit form.
func shortFP(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}

// goldenLocks serialise the making of each golden volume in this process.
type goldenLocks struct {
	mu sync.Mutex
	by map[string]*sync.Mutex
}

var locksInit sync.Mutex

// goldenLocks returns r's golden-volume locks, made on first use.
func (r *Runner) goldenLocks() *goldenLocks {
	locksInit.Lock()
	defer locksInit.Unlock()
	if r.locks == nil {
		r.locks = &goldenLocks{by: map[string]*sync.Mutex{}}
	}
	return r.locks
}

// lock returns the lock of golden volume id.
func (l *goldenLocks) lock(id string) *sync.Mutex {
	l.mu.Lock()
	defer l.mu.Unlock()
	mu := l.by[id]
	if mu == nil {
		mu = &sync.Mutex{}
		l.by[id] = mu
	}
	return mu
}

// ensureGolden makes the image's golden volume once: its id names the image
// and the id map, so differently shifted goldens never share a name.
func (r *Runner) ensureGolden(ctx context.Context, img Image, privileged bool) (storage.Volume, error) {
	v, _, err := r.ensureGoldenMade(ctx, img, privileged)
	return v, err
}

// ensureGoldenMade is ensureGolden that also says whether this call made
// the volume (false: it was there, or another process made it meanwhile).
func (r *Runner) ensureGoldenMade(ctx context.Context, img Image, privileged bool) (storage.Volume, bool, error) {
	id := goldenID(img.Fingerprint, "priv")
	var opts storage.GoldenOptions
	if !privileged {
		m := r.IDMap
		id = goldenID(img.Fingerprint, m.Key())
		opts.Shift = &m
	}
	// One builder per golden in this process; across processes the driver
	// answers ErrExists to the loser, who then uses the winner's volume.
	mu := r.goldenLocks().lock(id)
	mu.Lock()
	defer mu.Unlock()

	v, err := r.Storage.Get(ctx, id)
	if err == nil {
		return v, false, nil
	}
	if errors.Is(err, storage.ErrCorrupt) {
		err = r.dropCorruptGolden(ctx, id, err)
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return storage.Volume{}, false, fmt.Errorf("golden volume %s: %w", id, err)
	}
	made := true
	v, err = r.Storage.CreateGolden(ctx, id, img.Source, opts)
	if errors.Is(err, storage.ErrExists) {
		made = false
		v, err = r.Storage.Get(ctx, id)
	}
	if err != nil {
		return storage.Volume{}, false, fmt.Errorf("golden volume %s for image %s: %w", id, img.Fingerprint, err)
	}
	return v, made, nil
}

// dropCorruptGolden destroys golden volume id, whose record cause says is
// corrupt, so that it is made again, and says so in the job output; it
// returns ErrNotFound once the volume is gone.
func (r *Runner) dropCorruptGolden(ctx context.Context, id string, cause error) error {
	// Only if still corrupt: another process may have made it again.
	if err := storage.DestroyCorrupt(ctx, r.Storage, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w; removing it: %w", cause, err)
	}
	why := cause
	var ce *storage.CorruptError
	if errors.As(cause, &ce) {
		why = ce.Err
	}
	if r.Output != nil {
		r.outMu.Lock()
		fmt.Fprintf(r.Output, "stint: golden volume %s: corrupt record (%v): removed it, rebuilding\n", id, why)
		r.outMu.Unlock()
	}
	return fmt.Errorf("golden volume %s: %w", id, storage.ErrNotFound)
}

// RepairGoldens destroys the golden volumes whose record is corrupt (a job
// needing one builds it again) and returns what it removed; a corrupt
// volume that is no golden (a clone) or still has clones stays, an error.
func (h *Host) RepairGoldens(ctx context.Context) ([]string, error) {
	if h.opts.Remote != "" {
		return nil, nil // a remote makes roots from images: no golden volume here
	}
	r, err := h.engine(ctx)
	if err != nil {
		return nil, err
	}
	return repairGoldens(ctx, r.Storage)
}

func repairGoldens(ctx context.Context, drv storage.Driver) ([]string, error) {
	bad, err := storage.Corrupt(drv)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, ce := range bad {
		if !strings.HasPrefix(ce.ID, "golden-") {
			errs = append(errs, fmt.Errorf("%w: not a golden volume, left alone", ce))
			continue
		}
		if err := storage.DestroyCorrupt(ctx, drv, ce.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			errs = append(errs, fmt.Errorf("%w: %w", ce, err))
			continue
		}
		removed = append(removed, fmt.Sprintf("golden volume %s (corrupt record: %v)", ce.ID, ce.Err))
	}
	return removed, errors.Join(errs...)
}
