package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Recovery after crashes: Sweep removes what an interrupted create or
// destroy left in a pool; InterruptDestroy and Leftovers let tests make and
// see such leftovers.

// Sweep implements Driver: it removes .tmp-* and .trash-* directories that
// no live create or destroy holds locked, and backend objects no volume
// directory refers to.
func (p *pool) Sweep(ctx context.Context) error {
	if p.closed.Load() {
		return fmt.Errorf("storage pool %s: driver closed", p.dir)
	}
	unlock, err := p.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	ents, err := os.ReadDir(p.vdir(""))
	if err != nil {
		return fmt.Errorf("sweep storage pool %s: %w", p.dir, err)
	}
	known := map[string]bool{}
	var errs []error
	corrupt := false
	for _, e := range ents {
		dir := p.vdir(e.Name())
		m, merr := readMeta(dir)
		orphan := strings.HasPrefix(e.Name(), tmpPrefix) || strings.HasPrefix(e.Name(), trashPfx)
		if !orphan {
			if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if m, err := p.record(e.Name()); err == nil {
				known[m.Token] = true
			} else if errors.Is(err, ErrCorrupt) {
				corrupt = true // its objects' token is unknown
			}
			continue
		}
		lk, err := lockDir(dir)
		if err != nil {
			if merr == nil {
				known[m.Token] = true // busy: a live create or destroy
			}
			continue
		}
		if merr != nil {
			m = nil
		}
		if err := p.discard(ctx, dir, m); err != nil {
			errs = append(errs, fmt.Errorf("sweep %s: %w", dir, err))
			if m != nil {
				known[m.Token] = true
			}
		}
		lk.Close()
	}
	// A volume with a corrupt record may own any unknown backend object:
	// orphans wait until it is destroyed (Destroy sweeps then).
	if !corrupt {
		if err := p.be.orphans(ctx, known); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// InterruptDestroy does only the first step of Destroy (unmount, rename to
// .trash-*), as a crash right after it would leave the pool: for tests of
// Sweep. d must come from Open.
func InterruptDestroy(ctx context.Context, d Driver, id string) error {
	p, ok := d.(*pool)
	if !ok {
		return fmt.Errorf("interrupt destroy: %T is not a stint pool", d)
	}
	m, err := p.get(id)
	if err != nil {
		return err
	}
	if err := unmountAll(p.vdir(id)); err != nil {
		return err
	}
	return os.Rename(p.vdir(m.ID), p.vdir(trashPfx+id+"-"+randHex()))
}

// Leftovers lists the pool's .tmp-* and .trash-* entries, which Sweep
// removes: for tests. d must come from Open.
func Leftovers(d Driver) ([]string, error) {
	p, ok := d.(*pool)
	if !ok {
		return nil, fmt.Errorf("leftovers: %T is not a stint pool", d)
	}
	ents, err := os.ReadDir(p.vdir(""))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// syncFS flushes the filesystem holding path.
func syncFS(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", path, err)
	}
	return nil
}
