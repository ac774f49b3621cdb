// Package reconcile brings a host's long-lived containers to what a spec set
// says, once (plan, apply, down) or continuously (watch).
//
// It is built after controller-runtime's reconcile loop: level-based (every
// pass compares the whole desired set with the whole observed set, so a
// missed event is only a delay), idempotent (a pass on a host that already
// matches its specs changes and writes nothing), an error means retry with
// backoff, and a terminal error (an invalid spec) means no retry until the
// spec files change.
//
// The pieces, each usable on its own:
//
//   - Plan: a pure diff of desired containers against observed ones, giving
//     Actions with human reasons. No I/O; unit-tested without root.
//   - Apply: runs Actions on a Backend, independent containers in parallel;
//     one container's failure never stops the others.
//   - Watcher: fsnotify on the directories holding the specs, debounced,
//     periodic resync for drift, backoff on errors.
//
// The Backend is the only part that touches containers; stint's own is
// runner.LongLived, so this package reaches no runtime, storage or network.
package reconcile
