package images

import (
	"maps"
	"time"
)

// withBases is opts.InUse with the bases of every image that stays, to a
// fixed point (a recipe on a recipe keeps both bases).
func withBases(imgs []*Image, opts PruneOptions) map[string]bool {
	keep := maps.Clone(opts.InUse)
	if keep == nil {
		keep = map[string]bool{}
	}
	for changed := true; changed; {
		changed = false
		o := opts
		o.InUse = keep
		for _, img := range imgs {
			base := img.Properties[BaseProperty]
			if base != "" && !keep[base] && !o.Prunable(img) {
				keep[base], changed = true, true
			}
		}
	}
	return keep
}

// PruneOptions choose what Prune removes.
type PruneOptions struct {
	// InUse are fingerprints referenced by containers: never pruned.
	InUse map[string]bool
	// UnusedFor, when positive, also prunes images neither used nor
	// imported within that long (whatever their expiry).
	UnusedFor time.Duration
	// Now is the reference time (default time.Now()).
	Now time.Time
	// DryRun reports without deleting.
	DryRun bool
}

// Prunable reports whether Prune would remove img: not in use, and either
// superseded (an old build of a spec image, see Superseded), past its
// expiry date, or unused (last used or, never used, imported) for
// longer than UnusedFor.
func (o PruneOptions) Prunable(img *Image) bool {
	if o.InUse[img.Fingerprint] {
		return false
	}
	if Superseded(img) {
		return true
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if !img.Expires.IsZero() && img.Expires.Before(now) {
		return true
	}
	if o.UnusedFor > 0 {
		last := img.LastUsed
		if last.IsZero() {
			last = img.Uploaded
		} else {
			// Touch writes a use at most once a minute: a later use may
			// not be recorded yet, so a recorded one lasts that minute.
			last = last.Add(touchEvery)
		}
		return now.Sub(last) > o.UnusedFor
	}
	return false
}

// Prune deletes the prunable images (see PruneOptions.Prunable) and returns
// them. The base of a recipe's result that stays (BaseProperty) stays too,
// so the cached result stays valid.
func (s *Store) Prune(opts PruneOptions) ([]*Image, error) {
	imgs, err := s.List()
	if err != nil {
		return nil, err
	}
	opts.InUse = withBases(imgs, opts)
	var out []*Image
	for _, img := range imgs {
		if !opts.Prunable(img) {
			continue
		}
		if !opts.DryRun {
			if _, err := s.Delete(img.Fingerprint); err != nil {
				return out, err
			}
		}
		out = append(out, img)
	}
	return out, nil
}
