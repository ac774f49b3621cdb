package runner

import "path/filepath"

// Layout is where everything stint owns lives under --root. This is the one
// place that spells it; roots that users already have depend on it, so a
// name here never changes:
//
//	<root>/containers/        the LXC path (container configs, logs, staged mounts)
//	<root>/state/             the crash journal: one record per container
//	<root>/storage/           the default storage pool (volumes/ inside, per driver)
//	<root>/images/            the image store
//	<root>/logs/              job output and long-lived containers' consoles
//	<root>/cache/             cache volumes: .gen/<name>.json names each one's current
//	                          generation in the pool (runner/cache.go); <name>/ is an
//	                          older stint's shared directory, read once to seed it
//	<root>/reconcile/         long-lived containers' stored specs and set owners
//	<root>/volumes/           spec sets' volumes (persisted homes)
//	<root>/agents/            containers' SSH agent socket directories
//	<root>/gitlab/jobs/       the GitLab driver's job records (docs/gitlab.md)
type Layout struct {
	Root string
}

// Containers is the LXC path.
func (l Layout) Containers() string { return filepath.Join(l.Root, "containers") }

// State is the state journal's directory.
func (l Layout) State() string { return filepath.Join(l.Root, "state") }

// Images is the image store's directory.
func (l Layout) Images() string { return filepath.Join(l.Root, "images") }

// Logs keeps job logs and console logs.
func (l Layout) Logs() string { return filepath.Join(l.Root, "logs") }

// Cache keeps cache volumes' pointers and locks (their generations are
// volumes of the storage pool).
func (l Layout) Cache() string { return filepath.Join(l.Root, "cache") }

// Reconcile keeps long-lived containers' stored specs.
func (l Layout) Reconcile() string { return filepath.Join(l.Root, "reconcile") }

// Volumes keeps spec sets' volumes (<set>/home-<user>).
func (l Layout) Volumes() string { return filepath.Join(l.Root, "volumes") }

// Agents keeps containers' SSH agent socket directories.
func (l Layout) Agents() string { return filepath.Join(l.Root, "agents") }

// GitLabJobs keeps the GitLab driver's job records (gitlab.Records).
func (l Layout) GitLabJobs() string { return filepath.Join(l.Root, "gitlab", "jobs") }

// ConsoleLog is long-lived container name's console log.
func (l Layout) ConsoleLog(name string) string { return filepath.Join(l.Logs(), name+".log") }
