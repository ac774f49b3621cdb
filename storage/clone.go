package storage

import (
	"context"
	"fmt"
	"os"
	"time"
)

// Clone implements Driver. Each try holds the pool lock from the golden
// volume's check to the clone's rename into place, so that a concurrent
// Destroy of the golden volume cannot slip in between (the temporary
// volume is made and locked under a hold of its own before, and its record
// written between the two); on a full pool it waits for
// space being freed (a destroy's) and tries again, else fails with a
// *FullError (space.go).
func (p *pool) Clone(ctx context.Context, parent, id string) (v Volume, err error) {
	return p.cloneRetrying(ctx, parent, id, true)
}

// CloneTransient implements TransientCloner: Clone without the fsync of
// the clone's record.
func (p *pool) CloneTransient(ctx context.Context, parent, id string) (v Volume, err error) {
	return p.cloneRetrying(ctx, parent, id, false)
}

func (p *pool) cloneRetrying(ctx context.Context, parent, id string, durable bool) (v Volume, err error) {
	err = p.withSpace(ctx, func() (err error) {
		v, err = p.clone(ctx, parent, id, durable)
		return err
	})
	return v, err
}

func (p *pool) clone(ctx context.Context, parent, id string, durable bool) (Volume, error) {
	if err := p.check(id); err != nil {
		return Volume{}, err
	}
	if err := p.check(parent); err != nil {
		return Volume{}, err
	}
	// The temporary volume's record (fsynced when durable) is written
	// outside the pool lock: other jobs' clones need not wait for it.
	m := &meta{ID: id, Kind: KindClone, Parent: parent, Token: randHex(), Created: time.Now().UTC(), Driver: p.be.name()}
	tmp, lk, err := p.newTmpUnlocked(ctx, m, durable)
	if err != nil {
		return Volume{}, err
	}
	defer lk.Close()
	filled := false
	defer func() {
		if !filled { // refused before anything was made in it
			_ = os.RemoveAll(tmp)
		}
	}()
	unlock, err := p.lock(ctx)
	if err != nil {
		return Volume{}, err
	}
	defer unlock()
	pm, err := p.get(parent)
	if err != nil {
		return Volume{}, fmt.Errorf("clone %q: golden %w", id, err)
	}
	if pm.Kind != KindGolden {
		return Volume{}, fmt.Errorf("clone %q: volume %q is a clone, not a golden volume", id, parent)
	}
	if ok, err := p.exists(id); err != nil || ok {
		if err == nil {
			err = fmt.Errorf("volume %q: %w", id, ErrExists)
		}
		return Volume{}, err
	}
	pdir := p.vdir(parent)
	if err := p.be.activate(ctx, pdir, pm, ""); err != nil {
		return Volume{}, fmt.Errorf("clone %q: mount golden volume %q: %w", id, parent, err)
	}
	filled = true
	return p.fillLocked(ctx, m, tmp, "clone", pdir, func(tmp string) error {
		if err := p.be.clone(ctx, pdir, pm, tmp, m); err != nil {
			return fmt.Errorf("clone %q from %q: %w", id, parent, err)
		}
		return nil
	})
}

// makeLocked makes volume m under the pool lock (held by the caller) in a
// new temporary volume directory: fillLocked.
func (p *pool) makeLocked(ctx context.Context, m *meta, verb, pdir string, fill func(tmp string) error) (_ Volume, err error) {
	tmp, lk, err := p.newTmp(m, true)
	if err != nil {
		return Volume{}, err
	}
	defer lk.Close()
	return p.fillLocked(ctx, m, tmp, verb, pdir, fill)
}

// fillLocked makes volume m under the pool lock (held by the caller): fill
// fills temporary volume directory tmp (newTmp's, holding m), which is
// unmounted, renamed into place and mounted (over pdir, a clone's golden);
// on any error what was made is discarded. verb names the step in errors
// ("clone", "snapshot").
func (p *pool) fillLocked(ctx context.Context, m *meta, tmp, verb, pdir string, fill func(tmp string) error) (_ Volume, err error) {
	committed := false
	defer func() {
		if err != nil {
			dir := tmp
			if committed {
				dir = p.vdir(m.ID)
			}
			if derr := p.discard(context.WithoutCancel(ctx), dir, m); derr != nil {
				err = fmt.Errorf("%w (and cleaning up %s: %v)", err, dir, derr)
			}
		}
	}()
	if err := fill(tmp); err != nil {
		return Volume{}, err
	}
	if err := unmountAll(tmp); err != nil {
		return Volume{}, fmt.Errorf("%s %q: %w", verb, m.ID, err)
	}
	if err := p.commitLocked(tmp, m.ID); err != nil {
		return Volume{}, err
	}
	committed = true
	noun := "clone"
	if m.Kind == KindGolden {
		noun = "golden volume"
	}
	if err := p.be.activate(ctx, p.vdir(m.ID), m, pdir); err != nil {
		return Volume{}, fmt.Errorf("mount %s %q: %w", noun, m.ID, err)
	}
	return p.volume(m), nil
}
