package runner

import (
	"cmp"
	"maps"

	stintnet "github.com/stintdev/stint/net"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
)

// Request is one container to make, whatever kind: a job's, an exec's, a
// recipe build's or a long-lived container's. Each of them converts into a
// Request, and one path provisions it (launch) and tears it down
// (session, teardown).
type Request struct {
	// Name is what the spec calls it (a job, a container, "exec"); it
	// names the container in messages and progress events.
	Name string
	// Container is the runtime name: unique, and the name of its record,
	// clone volume and network lease.
	Container string
	// Kind is the state record's kind (state.KindJob, KindExec, KindContainer).
	Kind string
	// Set is a long-lived container's spec set (its record names it).
	Set string
	// Image is an alias, a fingerprint prefix or an [image.*] name.
	Image      string
	Privileged bool
	Mounts     []spec.Mount // binds, tmpfs and cache volumes
	Env        map[string]string
	User       string // name or uid in the container ("" is root)
	// Group, when set, is the user's primary group instead of its own (a
	// name or gid: an OCI image's User "user:group").
	Group   string
	Workdir string // made in the clone when missing
	Limits  container.Limits
	Network spec.Network
	// Hostname is the container's hostname (and its name on a bridge);
	// empty: the runtime name.
	Hostname string
	Ports    []spec.Port
	// Raw are the spec's raw runtime keys, applied last.
	Raw map[string]string
	// Init is PID 1: stint's minimal init unless a long-lived container
	// boots its image or runs its command.
	Init container.Init
	// Render: render the image's templates into the clone (jobs and execs).
	Render bool
	// Start: start the container once defined (all but long-lived ones,
	// which apply starts when the spec says running).
	Start bool
	// HostUser: give the container the invoking user (Dev is resolved
	// from it when launched).
	HostUser bool
	// ReadAhead are files in the container it runs first (a job's shell):
	// read into the page cache while it starts (readahead.go).
	ReadAhead []string
	// Dev is what the host user brings (devbox.go); nil without one.
	Dev *devbox
	// Target is the cluster member a remote runtime places it on ("":
	// the cluster's choice; local LXC has none, see remote.go).
	Target string
}

// jobRequest is the Request of job: a fresh container name, stint's init.
func jobRequest(job spec.Job, kind string) Request {
	user := job.User
	if job.ImageUser && !job.HostUser {
		user = "" // the image's own user, else root (ImageDefaults)
	}
	return Request{
		Name: job.Name, Container: ContainerName(job.Name), Kind: kind, Image: job.Image,
		Privileged: job.Privileged, Mounts: job.Mounts, Env: job.Env, User: user, Workdir: job.Workdir,
		Limits:  container.Limits{Memory: job.Limits.Memory, CPUs: job.Limits.CPUs, Pids: job.Limits.Pids},
		Network: job.Network, Raw: job.Raw, Render: true, Start: true, HostUser: job.HostUser,
		Target: job.Target, ReadAhead: programFiles(lineArgv(job.Shell, "")[0]),
	}
}

// containerRequest is the Request of long-lived container c of set, named
// rtName, with its console logged to consoleLog.
func containerRequest(set string, c spec.Container, rtName, consoleLog string) Request {
	return Request{
		Name: c.Name, Container: rtName, Kind: state.KindContainer, Set: set, Image: c.Image,
		Privileged: c.Privileged, Mounts: c.Mounts, Hostname: cmp.Or(c.Hostname, c.Name), Ports: c.Ports,
		Limits:  container.Limits{Memory: c.Limits.Memory, CPUs: c.Limits.CPUs, Pids: c.Limits.Pids},
		Network: c.Network, Raw: maps.Clone(c.Raw), Init: containerInit(c, consoleLog),
		Target: c.Target,
	}
}

// netRequest is what the network manager is asked for req.
func (req Request) netRequest() stintnet.Request {
	ports := make([]stintnet.Port, 0, len(req.Ports))
	for _, p := range req.Ports {
		ports = append(ports, stintnet.Port(p))
	}
	return stintnet.Request{Container: req.Container, Hostname: req.Hostname, Mode: stintnet.ModeBridge,
		Bridge: req.Network.Bridge, IPv4: req.Network.IPv4, Ports: ports}
}
