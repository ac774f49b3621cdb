package runner

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/oci"
	"github.com/stintdev/stint/runner/output"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
	"github.com/stintdev/stint/storage"
)

// StoreImages resolves job images through the local image store: an
// [image.*] of the set is built (busybox) or imported (source) on first use,
// anything else is an alias or fingerprint prefix already in the store.
type StoreImages struct {
	Store *images.Store
	Set   *spec.Set // may be nil (stint exec)
	// Recipes builds images with `from` in its containers (see recipe.go);
	// nil refuses them.
	Recipes *Runner
	// PullProgress, when set, is told of a remote image's downloads.
	PullProgress func(item string, done, total int64)
	// Refresh is how often, at most, an auto-updating pulled image is
	// checked against its remote on use (default DefaultRefresh); an
	// [image.*]'s own refresh wins.
	Refresh time.Duration
	// CheckTimeout bounds that check (default DefaultCheckTimeout): an
	// unreachable remote means the cached image, with a warning.
	CheckTimeout time.Duration
	// Warn reports what a job goes on without (a remote that did not
	// answer); nil: slog's warning.
	Warn func(msg string)

	mu    sync.Mutex // guards done and refMu
	done  map[string]*images.Image
	refMu map[string]*sync.Mutex // one build or import per image at a time
}

var _ ImageResolver = (*StoreImages)(nil)

// ResolveImage implements ImageResolver.
func (s *StoreImages) ResolveImage(ctx context.Context, ref string) (Image, error) {
	// A lock per reference, not one for all: a recipe resolves its base
	// while its own reference is locked.
	s.mu.Lock()
	if s.refMu == nil {
		s.refMu, s.done = map[string]*sync.Mutex{}, map[string]*images.Image{}
	}
	mu := s.refMu[ref]
	if mu == nil {
		mu = &sync.Mutex{}
		s.refMu[ref] = mu
	}
	s.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()

	s.mu.Lock()
	img := s.done[ref]
	s.mu.Unlock()
	if img != nil {
		if err := s.touch(img); err != nil {
			return Image{}, err
		}
		out, err := s.image(img)
		out.Cached = true
		return out, err
	}
	had, err := s.Store.List()
	if err != nil {
		return Image{}, err
	}
	img, err = s.resolve(ctx, ref)
	if err != nil {
		return Image{}, err
	}
	if err := s.touch(img); err != nil {
		return Image{}, err
	}
	s.mu.Lock()
	s.done[ref] = img
	s.mu.Unlock()
	out, err := s.image(img)
	// Stored before this resolve began: nothing was built, pulled or
	// imported.
	out.Cached = slices.ContainsFunc(had, func(h *images.Image) bool { return h.Fingerprint == img.Fingerprint })
	return out, err
}

func (s *StoreImages) resolve(ctx context.Context, ref string) (*images.Image, error) {
	if def := s.def(ref); def != nil {
		return s.buildDef(ctx, *def, nil)
	}
	if root := storeRoot(s.Store); IsPullRef(root, ref) {
		return s.pulled(ctx, root, ref, refreshPolicy{})
	}
	img, err := s.Store.Resolve(ref)
	if err != nil {
		return nil, err // names the image already
	}
	return img, nil
}

// refreshPolicy is how a use of a pulled image asks for a newer one:
// auto (nil: the stored image's own auto_update, which a pull on use
// sets) at most every every (0: StoreImages.Refresh).
type refreshPolicy struct {
	auto  *bool
	every time.Duration
}

// pulled resolves a remote reference (REMOTE:ALIAS, oci-layout:...): the
// newest image the store holds from it, else a pull. A stored image that
// auto-updates is checked against its remote once its refresh interval
// has passed since its pull or last check, and a newer version pulled;
// a remote that does not answer in time leaves the stored image in use,
// with a warning.
func (s *StoreImages) pulled(ctx context.Context, root, ref string, pol refreshPolicy) (*images.Image, error) {
	img, err := s.cachedPull(ref)
	if err != nil {
		return nil, err
	}
	if img == nil {
		res, err := PullImage(ctx, s.Store, root, ref, PullOptions{Progress: s.PullProgress})
		if err != nil {
			return nil, err
		}
		// Pulled on use: auto-updating unless the spec says otherwise, as
		// LXD's images.auto_update_cached.
		auto := pol.auto == nil || *pol.auto
		return s.Store.UpdateSource(res.Image.Fingerprint, func(src *images.Source) { src.AutoUpdate = auto })
	}
	auto := img.Source.AutoUpdate
	if pol.auto != nil {
		auto = *pol.auto
	}
	every := cmp.Or(pol.every, s.Refresh, DefaultRefresh)
	last := img.Source.Checked
	if last.Before(img.Source.Pulled) {
		last = img.Source.Pulled
	}
	if !auto || time.Since(last) < every {
		return img, nil
	}
	cur, _, err := RefreshImage(ctx, s.Store, root, img, RefreshOptions{CheckTimeout: s.CheckTimeout, Progress: s.PullProgress})
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		s.warn(fmt.Sprintf("image %s: using the cached image %s: %v", ref, short(img.Fingerprint), err))
		return img, nil
	}
	return cur, nil
}

func (s *StoreImages) warn(msg string) {
	if s.Warn != nil {
		s.Warn(msg)
		return
	}
	slog.Warn(msg)
}

// short is a fingerprint's first 12 digits, as `image list` shows it.
func short(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}

// pullDef is an [image.*] whose source is on a remote, with aliases
// added.
func (s *StoreImages) pullDef(ctx context.Context, def spec.Image, aliases []string) (*images.Image, error) {
	pol := refreshPolicy{auto: def.AutoUpdate}
	if def.Refresh != nil {
		pol.every = time.Duration(*def.Refresh)
	}
	img, err := s.pulled(ctx, storeRoot(s.Store), def.Pull, pol)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", def.Name, err)
	}
	if len(aliases) == 0 {
		return img, nil
	}
	return s.Store.Record(img.Fingerprint, images.ImportOptions{Aliases: aliases})
}

// cachedPull is the newest stored image pulled from ref, or nil.
func (s *StoreImages) cachedPull(ref string) (*images.Image, error) {
	all, err := s.Store.List()
	if err != nil {
		return nil, err
	}
	var best *images.Image
	for _, img := range all {
		if pulledFrom(img.Source, ref) && (best == nil || images.PulledLater(img, best)) {
			best = img
		}
	}
	return best, nil
}

// pulledFrom reports whether src records a pull of ref.
func pulledFrom(src *images.Source, ref string) bool {
	if src == nil {
		return false
	}
	if src.Remote == "oci-layout" {
		return src.Alias == ref || oci.LayoutPrefix+src.Alias == ref
	}
	return src.Remote+":"+src.Alias == ref
}

// storeRoot is the stint root an image store lives under (Layout.Images).
func storeRoot(s *images.Store) string { return filepath.Dir(s.Dir()) }

// touch records that a job uses img now, so that `image prune
// --unused-for` keeps it.
func (s *StoreImages) touch(img *images.Image) error {
	if err := s.Store.Touch(img); err != nil {
		return fmt.Errorf("use image %s: %w", img.Fingerprint, err)
	}
	return nil
}

func (s *StoreImages) image(img *images.Image) (Image, error) {
	d, err := oci.DefaultsOf(img)
	if err != nil {
		return Image{}, err // names the image and the property
	}
	return Image{
		Defaults: ImageDefaults{Env: d.Env, Workdir: d.WorkingDir, User: d.User,
			Command: slices.Concat(d.Entrypoint, d.Cmd), OCI: img.Properties[oci.PropDigest] != ""},
		Fingerprint: img.Fingerprint,
		Source: storage.SourceFunc(func(ctx context.Context, dir string) error {
			// Devices are skipped: unprivileged containers cannot use image
			// device nodes, and LXC's autodev makes /dev for every container.
			_, err := s.Store.Unpack(ctx, img, dir, images.UnpackOptions{SkipDevices: true})
			return err
		}),
		// LXD's "create" templates (/etc/hostname, ...) render into each
		// clone, owned by the container's root.
		Render: func(rootfs, name string, privileged bool, uid, gid int) error {
			return images.RenderTemplates(img, rootfs, images.TriggerCreate, images.TemplateContext{
				Name: name, Privileged: privileged, Ephemeral: true, UID: uid, GID: gid,
			})
		},
		RenderStart: func(rootfs, name string, privileged bool, uid, gid int) error {
			return images.RenderTemplates(img, rootfs, images.TriggerStart, images.TemplateContext{
				Name: name, Privileged: privileged, UID: uid, GID: gid,
			})
		},
	}, nil
}

// ImagesInUse are the fingerprints of the images `image prune` must keep
// whatever their age: those a container of this root was made from (every
// state record: jobs running or kept, execs, recipe builds, long-lived
// containers), and those the spec sets under reconcile name for their
// containers (the stored spec of each, resolved in the store). The value
// says why. A record that cannot be read is an error: prune then deletes
// nothing rather than guess.
func (h *Host) ImagesInUse() (map[string]string, error) {
	st, err := h.state()
	if err != nil {
		return nil, err
	}
	recs, err := st.List()
	if err != nil {
		return nil, fmt.Errorf("images in use: %w", err)
	}
	out := map[string]string{}
	for _, rec := range recs {
		if rec.Image != "" {
			out[rec.Image] = "used by " + rec.Name
		}
	}
	s, err := h.Images()
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		if rec.Kind != state.KindContainer {
			continue
		}
		// The stored spec of a long-lived container may name a newer
		// image than the one it was made from (a rebuild not applied yet).
		data, err := os.ReadFile(filepath.Join(h.layout.Reconcile(), rec.Name+".json"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("images in use: %w", err)
		}
		var c spec.Container
		if err := json.Unmarshal(data, &c); err != nil {
			return nil, fmt.Errorf("images in use: stored spec of %s: %w", rec.Name, err)
		}
		// An [image.*] name of the set resolves only while built under
		// an alias; the record names its fingerprint anyway.
		if img, err := s.Resolve(c.Image); err == nil {
			if _, ok := out[img.Fingerprint]; !ok {
				out[img.Fingerprint] = "named by the spec of " + rec.Name
			}
		}
	}
	return out, nil
}

// imageAndGolden resolves inst's image (building, pulling or importing it
// when the store lacks it) and makes its golden volume once, each a phase
// with its own events (phase_started, then phase with its duration and
// whether it was Cached) and time (inst.imageTime): what a job waits for
// before its container exists is told apart from the job itself.
func (r *Runner) imageAndGolden(ctx context.Context, inst *instance) (Image, storage.Volume, error) {
	req := inst.req
	start := time.Now()
	defer func() { inst.imageTime = time.Since(start) }()
	r.emit(output.Event{Type: output.EventPhaseStarted, Job: req.Name, Phase: output.PhaseImageBuild})
	img, err := r.Images.ResolveImage(ctx, req.Image)
	if err != nil {
		return Image{}, storage.Volume{}, err
	}
	t := r.cachedPhase(req.Name, output.PhaseImageBuild, start, img.Cached)
	inst.img = img
	inst.req = img.Defaults.apply(inst.req)
	r.emit(output.Event{Type: output.EventPhaseStarted, Job: req.Name, Phase: output.PhaseGolden})
	golden, made, err := r.ensureGoldenMade(ctx, img, req.Privileged)
	if err != nil {
		return img, storage.Volume{}, err
	}
	r.cachedPhase(req.Name, output.PhaseGolden, t, !made)
	return img, golden, nil
}

// cachedPhase is phase with the Cached flag.
func (r *Runner) cachedPhase(job, phase string, start time.Time, cached bool) time.Time {
	now := time.Now()
	d := now.Sub(start)
	r.emit(output.Event{Time: now.UTC(), Type: output.EventPhase, Job: job, Phase: phase, Millis: d.Milliseconds(), Micros: max(d.Microseconds(), 1), Cached: cached})
	return now
}
