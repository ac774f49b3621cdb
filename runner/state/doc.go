// Package state is stint's crash journal: one small record per container
// stint owns, written before any resource for it exists, so that after a
// kill -9 or a power cut `stint gc` (and the next `stint run`) finds and
// removes everything that was left.
//
// # Layout
//
// Everything lives in one directory, <--root>/state:
//
//	<name>.json       the Record, JSON, mode 0600
//	<name>.lock       an empty file; the owning process holds flock(LOCK_EX) on it
//	.<name>.json.tmp  a rewrite in progress (only the lock holder writes it)
//
// # Lifecycle
//
//	h, err := st.Create(&Record{Name: n, Kind: KindJob, Driver: "btrfs", Volume: n, ...})
//	// ... clone, configure, start, each step recorded with h.Update(...)
//	h.Delete()   // clean teardown: the record and its lock are gone
//	h.Release()  // or: keep the record (a kept or long-lived container) and unlock
//
// gc calls Orphans (records whose lock nobody holds), then Claim on each,
// removes the resources the record names, and Delete. A record whose lock a
// live process holds is never touched: Claim returns ErrBusy.
//
// # Ownership
//
// Ownership is a flock on <name>.lock (opened O_CLOEXEC, so no forked
// liblxc or container process inherits it), not a pid in the record: the kernel
// drops a flock when the last descriptor of its open file goes away, which
// includes the owner's death by any signal, so "lock free" means "owner gone"
// with no pid-reuse race. The pid in Record.Owner is informational (ps).
// Lock files are unlinked by Delete while held; a process that opened the old
// inode before the unlink re-checks after flock that the path still names the
// inode it locked, and retries otherwise, so two processes never both believe
// they own one name. flock locks belong to an open file description, so two
// handles in one process exclude each other just as two processes do.
//
// # Durability and fsync
//
// kill -9 needs no fsync at all: the page cache outlives the process, and a
// rename is atomic for every other reader. fsync only buys survival of a power
// cut, so the question per write is "what of this still exists after a
// reboot?". Mounts, network devices, nftables rules and running containers
// do not; the clone volume, the container's LXC directory and the record do.
// Hence:
//
//   - Create writes the record to a temporary file, fsyncs it, renames it into
//     place and fsyncs the directory: 2 fsyncs, once per container. After it
//     returns, the name is journalled even across a power cut.
//   - CreateOrdered does the same without the fsyncs, for a record whose
//     resources are all made afterwards on the state directory's own
//     filesystem (the runner checks the mount of the state directory, the
//     LXC path and the golden volume: btrfs, overlay and dir pools under
//     --root; never zfs or lvm, nor a pool mounted apart). A filesystem
//     persists its metadata in order: ext4's journal commits transactions
//     in sequence, and btrfs commits every change with the transaction a
//     snapshot forces. So once a clone exists on disk, so does the
//     record's name (its content may be lost, which leaves a corrupt
//     record, still listed by name: below). Two fsyncs were a third of
//     the time of `stint run -j 4` on btrfs, where they queue behind the
//     snapshots' commits (issue 16); a long-lived container's record is
//     still made with Create.
//   - Update rewrites the record by temp file and rename. It fsyncs (file and
//     directory, 2 fsyncs) only when a field that names something surviving a
//     reboot changed: Kind, Set, Job, SpecHash, Image, Driver, Volume, Kept.
//     Phase, Mounts, Network and Owner changes are rename-only: after a power
//     cut their worst outcome is an older (or, on a filesystem without
//     rename-over flushing, an empty) record, and all they describe is gone.
//   - Delete and Release do not fsync: a deleted record that reappears after
//     a power cut makes gc retry removing resources that are already gone,
//     which gc must tolerate anyway.
//
// So a job whose runner puts Driver and Volume into the record at Create
// (name the clone volume after the record) costs exactly 2 fsyncs for its
// whole life, however many phases it records; Store.Stats counts them and
// BenchmarkLifecycle reports fsyncs/op (2 against 12 if every update were
// fsynced). Wall time on the development VM (ext4 on virtio, a disk shared
// with parallel builds) was too noisy to rank: one fsync took 0.5-8 ms
// depending on others' I/O, a rename-only update about 0.2 ms (ext4's
// auto_da_alloc starts writeback on rename-over, which is also why a torn
// record is unlikely there). The fsync count is the figure that carries over
// to other hosts, so it is the one the policy minimises.
//
// A record that cannot be parsed (torn by a power cut on a filesystem that
// does not flush on rename) is still listed, as Record{Name, Phase:
// PhaseCorrupt}: its name alone is enough for gc to find the LXC container
// and, if the runner followed the naming advice above, the clone volume.
package state
