package runner

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

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
	return "golden-" + fp + "-"
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
// returns a *GoldenInUseError naming them.
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
