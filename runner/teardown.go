package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	stintnet "github.com/stintdev/stint/net"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/storage"
)

// teardown removes everything a record names, innermost first: the
// container, the mounts stint made for it, the clone; then the record.
// It tolerates resources that are already gone (gc retries after crashes).
func (r *Runner) teardown(ctx context.Context, h *state.Handle) error {
	rec := h.Record()
	var errs []error
	if err := r.Runtime.Destroy(ctx, rec.Name); err != nil {
		errs = append(errs, err)
	} else if err := r.removeCgroups(rec.Name); err != nil {
		errs = append(errs, err)
	}
	// The network after the container: its veth goes with it. Release
	// needs only the name, so a lease lost in a crash is released too. A
	// container journalled without a bridge never reads the host-wide
	// network state: a corrupt one cannot fail it.
	if r.Net != nil && needsRelease(rec) {
		if err := r.Net.Release(ctx, rec.Name); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(rec.Mounts) - 1; i >= 0; i-- {
		if err := unix.Unmount(rec.Mounts[i], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", rec.Mounts[i], err))
		}
	}
	// A corrupt record knows only its name, and the clone is named after
	// it (provision journals Volume: Container).
	// A remote's container has no local volume (and this Host no pool).
	vol, corrupt := rec.Volume, rec.Phase == state.PhaseCorrupt || (rec.Volume == "" && rec.Remote == "")
	if vol == "" {
		vol = rec.Name
	}
	// On a remote (no pool here) the runtime's Destroy removed the root.
	if r.Storage != nil {
		if rec.Driver != "" && rec.Driver != r.Storage.Name() {
			errs = append(errs, fmt.Errorf("volume %s is on storage driver %s, not %s", vol, rec.Driver, r.Storage.Name()))
		} else if err := r.Storage.Destroy(ctx, vol); err != nil && !errors.Is(err, storage.ErrNotFound) {
			errs = append(errs, fmt.Errorf("destroy volume %s: %w", vol, err))
		}
	}
	errs = append(errs, r.dropCacheCopies(ctx, rec, corrupt)...)
	if corrupt && r.Storage != nil && len(errs) == 0 {
		// Nothing in the record to trust: check what the name and the
		// disk say is gone before the record goes.
		errs = append(errs, r.leftBehind(ctx, rec.Name, vol)...)
	}
	if r.SpecDir != "" {
		if err := os.Remove(r.shellInfoPath(rec.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	// A long-lived container's files, also when gc removes its record
	// (a torn one: then its name, SET.NAME, is all that tells; a job's
	// container name never holds a dot).
	if rec.Kind == state.KindContainer || (rec.Phase == state.PhaseCorrupt && strings.Contains(rec.Name, ".")) {
		if err := removeLongLivedFiles(r.SpecDir, r.LogDir, r.AgentDir, rec.Name); err != nil {
			errs = append(errs, fmt.Errorf("files of container %s: %w", rec.Name, err))
		}
	}
	if len(errs) > 0 {
		// Keep the record, unlocked: gc will retry what failed.
		_ = h.Release()
		return fmt.Errorf("teardown of %s: %w", rec.Name, errors.Join(errs...))
	}
	return h.Delete()
}

// leftBehind names what is still there of container name and its clone
// vol after a teardown.
func (r *Runner) leftBehind(ctx context.Context, name, vol string) []error {
	var errs []error
	if st, err := r.Runtime.State(ctx, name); err != nil {
		errs = append(errs, err)
	} else if st != container.StateAbsent {
		errs = append(errs, fmt.Errorf("container %s: %w (%s)", name, ErrLeftBehind, st))
	}
	err := r.Storage.Walk(ctx, func(v storage.Volume) error {
		if v.ID == vol {
			return fmt.Errorf("volume %s: %w", vol, ErrLeftBehind)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return errs
}

// ErrLeftBehind is what a teardown found still present after it ran.
var ErrLeftBehind = errors.New("still present after teardown")

// needsRelease reports whether rec may hold a network lease: mode bridge, or
// a mode not journalled (older records, corrupt ones).
func needsRelease(rec state.Record) bool {
	return rec.NetMode == "" || rec.NetMode == string(stintnet.ModeBridge) || len(rec.Network) > 0
}

// keep stops a failed job's container and keeps it, its clone and its
// record for inspection (`stint ps`; `stint gc --kept` removes it).
func (r *Runner) keep(ctx context.Context, h *state.Handle) error {
	name := h.Name()
	stopErr := r.Runtime.Stop(ctx, name)
	if err := h.Update(func(rec *state.Record) { rec.Kept = true; rec.Phase = state.PhaseKept }); err != nil {
		return errors.Join(stopErr, err, h.Release())
	}
	return errors.Join(stopErr, h.Release())
}

// GCOptions choose what GC removes besides orphans.
type GCOptions struct {
	Kept bool // also containers kept by --keep-on-failure
}

// GCResult lists what GC removed and what it could not.
type GCResult struct {
	Removed []string `json:"removed"`
	Errors  []string `json:"errors,omitempty"`
}

// GC removes what dead owners left: every record whose lock no live process
// holds (and, with Kept, every kept one), with its container, mounts and
// clone. Records a live stint process holds are never touched; neither is a
// container without a record.
func (r *Runner) GC(ctx context.Context, opts GCOptions) (GCResult, error) {
	// A remote's records are gc'd with its --remote (gcRemote).
	res, err := r.gcRecords(ctx, opts, func(rec state.Record) bool { return rec.Remote != "" })
	if err != nil {
		return res, err
	}
	r.pruneCaches(ctx, &res)
	r.gcLeases(ctx, &res)
	r.gcPrivateNets(ctx, &res)
	r.gcCgroups(ctx, &res)
	if err := r.State.Sweep(); err != nil {
		res.Errors = append(res.Errors, err.Error())
	}
	if err := r.Storage.Sweep(ctx); err != nil {
		res.Errors = append(res.Errors, err.Error())
	}
	return res, nil
}

// gcRecords tears down every record whose lock no live process holds
// (and, with opts.Kept, every kept job) that skip (nil: none) doesn't
// exclude; a record claimed meanwhile is left to its owner.
func (r *Runner) gcRecords(ctx context.Context, opts GCOptions, skip func(state.Record) bool) (GCResult, error) {
	var res GCResult
	recs, err := r.State.Orphans()
	if err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	if opts.Kept {
		all, err := r.State.List()
		if err != nil {
			return res, fmt.Errorf("gc: %w", err)
		}
		for _, rec := range all {
			if rec.Kept && rec.Kind != state.KindContainer {
				recs = append(recs, rec)
			}
		}
	}
	for _, rec := range recs {
		if skip != nil && skip(rec) {
			continue
		}
		h, err := r.State.Claim(rec.Name)
		if errors.Is(err, state.ErrBusy) || errors.Is(err, state.ErrNotFound) {
			continue // its owner lives, or it went meanwhile
		}
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
			continue
		}
		if err := r.teardown(ctx, h); err != nil {
			res.Errors = append(res.Errors, err.Error())
			continue
		}
		res.Removed = append(res.Removed, rec.Name)
	}
	return res, nil
}

// gcLeases releases network leases whose container has no record: a record
// exists before its container attaches and is deleted only after teardown
// released the lease, so such a lease is a leftover (a state restored from
// a backup, a record removed by hand). Records are checked after the leases
// are read, so a container that attaches meanwhile is not in the list.
func (r *Runner) gcLeases(ctx context.Context, res *GCResult) {
	if r.Net == nil {
		return
	}
	st, err := r.Net.List(ctx)
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
		return
	}
	for name, l := range st.Leases {
		if !r.Net.Owns(l) {
			continue // another stint root's (the network state is host-wide)
		}
		if _, err := r.State.Get(name); !errors.Is(err, state.ErrNotFound) {
			continue
		}
		if err := r.Net.Release(ctx, name); err != nil {
			res.Errors = append(res.Errors, err.Error())
			continue
		}
		res.Removed = append(res.Removed, "network lease "+name)
	}
}
