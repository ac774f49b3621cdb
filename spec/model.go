package spec

import (
	"encoding/json"
	"time"
)

// This file is the resolved form of a spec set: what Load returns after
// validation, profile merging, matrix expansion and path resolution. It is
// the contract between spec/ and the rest of stint (the runner reads only
// these types), and, through its JSON tags, what `stint validate --json`
// prints: the spec's own key names.

// Set is a validated spec set: one or more files that form one namespace.
type Set struct {
	// Name names the set (the `name` key, or the first file's directory
	// name); apply/down/watch only touch containers of the same set.
	Name       string      `json:"name"`
	Files      []string    `json:"files"` // absolute paths, in load order
	Storage    Storage     `json:"storage"`
	Images     []Image     `json:"images"`
	Profiles   []Profile   `json:"profiles"`
	Jobs       []Job       `json:"jobs"`
	Containers []Container `json:"containers"`
	Services   []Service   `json:"services,omitempty"` // [service.*] (spec/service.go)
	// Named: a file gives the name (the `name` key); otherwise the
	// directory's name stands in for it.
	Named bool `json:"-"`
}

// Pos is where a definition starts in its file.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col,omitempty"`
}

// Storage is the [storage] table.
type Storage struct {
	Driver   string `json:"driver"`             // auto | btrfs | zfs | lvm | overlay | dir
	Path     string `json:"path,omitempty"`     // absolute
	Size     int64  `json:"size,omitempty"`     // bytes; btrfs loop-file pool
	Dataset  string `json:"dataset,omitempty"`  // zfs
	VG       string `json:"vg,omitempty"`       // lvm
	Thinpool string `json:"thinpool,omitempty"` // lvm
}

// Image is an [image.NAME] table. Exactly one of Builder, From, Source and
// Pull is set.
type Image struct {
	Name       string            `json:"name"`
	Builder    string            `json:"builder,omitempty"` // busybox | debootstrap
	Suite      string            `json:"suite,omitempty"`
	Variant    string            `json:"variant,omitempty"`
	Components []string          `json:"components,omitempty"`
	Mirror     string            `json:"mirror,omitempty"`
	From       string            `json:"from,omitempty"` // a recipe on top of another image
	Packages   []string          `json:"packages,omitempty"`
	Hooks      []string          `json:"hooks,omitempty"`      // absolute host paths, in order
	Files      map[string]string `json:"files,omitempty"`      // container path -> absolute host path
	Properties map[string]string `json:"properties,omitempty"` // os, release, description, ...
	Source     []string          `json:"source,omitempty"`     // absolute host paths: [unified] or [meta, rootfs]
	// Pull is a remote image, pulled on first use: source = "REMOTE:ALIAS"
	// or "oci-layout:/path[:tag]" (a string whose part before the first ':'
	// is a remote name: no '/', and something other than '/' follows).
	Pull string `json:"pull,omitempty"`
	// AutoUpdate and Refresh are a pull's refresh policy: whether a use
	// asks the remote for a newer version, and at most how often (nil:
	// the defaults, true and 6h; docs/images.md).
	AutoUpdate *bool     `json:"auto_update,omitempty"`
	Refresh    *Duration `json:"refresh,omitempty"`
	Pos        Pos       `json:"pos"`

	// HooksBeforePackages are the hooks marked before = "packages": run,
	// in order, after Repositories and before Packages are installed.
	HooksBeforePackages []string `json:"hooks_before_packages,omitempty"`
	// Repositories are apt sources (with their signing keys) a recipe adds
	// before its packages are installed, sorted by name.
	Repositories []Repository `json:"repositories,omitempty"`
	// Recommends: false installs Packages without recommended ones (apt
	// --no-install-recommends), true with them; nil leaves the base's default.
	Recommends *bool `json:"recommends,omitempty"`
}

// Repository is an apt source of a recipe: [image.X.repositories.NAME].
type Repository struct {
	Name       string   `json:"name"`
	URI        string   `json:"uri"`
	Suite      string   `json:"suite"`
	Components []string `json:"components,omitempty"`
	Key        string   `json:"key,omitempty"` // absolute host path of its signing key (armored or binary)
}

// Limits are resource limits; zero means unlimited.
type Limits struct {
	Memory int64   `json:"memory,omitempty"` // bytes
	CPUs   float64 `json:"cpus,omitempty"`
	Pids   int64   `json:"pids,omitempty"`
}

// Network is a network mode with its options.
type Network struct {
	Mode   string `json:"mode"`             // none | host | bridge
	Bridge string `json:"bridge,omitempty"` // bridge mode: the bridge's name (default stint0)
	IPv4   string `json:"ipv4,omitempty"`   // bridge mode: a fixed address
}

// Mount types.
const (
	MountBind  = "bind"
	MountCache = "cache"
	MountTmpfs = "tmpfs"
)

// Mount is one [[job.X.mount]] (or container mount).
type Mount struct {
	Type     string `json:"type"`             // bind | cache | tmpfs
	Source   string `json:"source,omitempty"` // bind: absolute host path
	Name     string `json:"name,omitempty"`   // cache: the volume's name
	Target   string `json:"target"`           // absolute container path
	Readonly bool   `json:"readonly,omitempty"`
	Size     int64  `json:"size,omitempty"` // tmpfs: bytes
	// Commit (cache, jobs only) says when the job's own copy of the cache
	// replaces the cache: on_success | always | never; "" is on_success.
	Commit string `json:"commit,omitempty"`
}

// Cache mount `commit` values.
const (
	CommitOnSuccess = "on_success"
	CommitAlways    = "always"
	CommitNever     = "never"
)

// Artifact `when` values.
const (
	WhenOnSuccess = "on_success"
	WhenOnFailure = "on_failure"
	WhenAlways    = "always"
)

// Artifact is one [[job.X.artifact]].
type Artifact struct {
	Path string `json:"path"` // an absolute glob inside the container
	Dest string `json:"dest"` // relative to the job's artifact directory ("" = its top)
	When string `json:"when"` // on_success | on_failure | always
}

// Duration is a time.Duration that prints as a Go duration string in JSON.
type Duration time.Duration

// MarshalJSON prints "10m0s"; zero prints "".
func (d Duration) MarshalJSON() ([]byte, error) {
	if d == 0 {
		return []byte(`""`), nil
	}
	return json.Marshal(time.Duration(d).String())
}

// Job is one ephemeral job after profile merging and matrix expansion.
type Job struct {
	Name     string            `json:"name"`             // test, or test[go=1.22] for a matrix variant
	Base     string            `json:"base"`             // the [job.X] key the variant came from
	Matrix   map[string]string `json:"matrix,omitempty"` // this variant's values
	Image    string            `json:"image"`            // an [image.*] name of the set, an alias or a fingerprint prefix
	Profiles []string          `json:"profiles,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	Workdir  string            `json:"workdir,omitempty"`
	User     string            `json:"user,omitempty"`
	// ImageUser: no profile or job sets a user, so User is the default
	// (root) and an image that names its own user (an OCI image's
	// config) runs the job as that user instead.
	ImageUser bool     `json:"-"`
	Timeout   Duration `json:"timeout"`
	Run       []string `json:"run"`
	// Shell is the command line each run line is appended to, as one more
	// argument ("bash -eo pipefail -c"); "" means the runner's default,
	// /bin/sh -c with pipefail where the image's sh supports it.
	Shell         string            `json:"shell,omitempty"`
	Mounts        []Mount           `json:"mounts,omitempty"`
	Artifacts     []Artifact        `json:"artifacts,omitempty"`
	Network       Network           `json:"network"` // default mode none
	Limits        Limits            `json:"limits"`
	Raw           map[string]string `json:"raw,omitempty"` // raw LXC keys, applied last
	Privileged    bool              `json:"privileged,omitempty"`
	KeepOnFailure bool              `json:"keep_on_failure,omitempty"`
	// HostUser gives the job the invoking user, mapped 1:1 (as for
	// containers); `user` still says whom the lines run as.
	HostUser bool `json:"host_user,omitempty"`
	// Services start beside the job on a network of its own (spec/service.go).
	Services []Service `json:"services,omitempty"`
	// Target is the cluster member a remote runs it on ("": the
	// cluster's scheduler places it); it needs --remote (spec/target.go).
	Target string `json:"target,omitempty"`
	Pos    Pos    `json:"pos"`
}

// Port is one published port ("8080:80/tcp", "127.0.0.1:8080:80/udp").
type Port struct {
	HostIP        string `json:"host_ip,omitempty"`
	HostPort      int    `json:"host_port"`
	ContainerPort int    `json:"container_port"`
	Proto         string `json:"proto"` // tcp | udp
}

// Container states.
const (
	StateRunning = "running"
	StateStopped = "stopped"
)

// Container is one long-lived [container.NAME] after profile merging.
type Container struct {
	Name       string            `json:"name"`
	Image      string            `json:"image"`
	Profiles   []string          `json:"profiles,omitempty"`
	Command    []string          `json:"command,omitempty"` // empty: boot the image's init
	State      string            `json:"state"`             // running | stopped
	Env        map[string]string `json:"env,omitempty"`
	Mounts     []Mount           `json:"mounts,omitempty"`
	Network    Network           `json:"network"` // default mode none
	Ports      []Port            `json:"ports,omitempty"`
	Limits     Limits            `json:"limits"`
	Raw        map[string]string `json:"raw,omitempty"`
	Privileged bool              `json:"privileged,omitempty"`
	// Workdir and User are where and as whom `stint shell` enters ("":
	// the user's home; the host user with HostUser, else root).
	Workdir string `json:"workdir,omitempty"`
	User    string `json:"user,omitempty"`
	// HostUser gives the container the invoking user, their uid and gid
	// mapped 1:1 (docs/devenv.md).
	HostUser bool `json:"host_user,omitempty"`
	// Home is HomeImage ("", the default) or HomePersist: the host user's
	// home in a named volume of the set.
	Home string `json:"home,omitempty"`
	// SSHAgent hands the invoking user's SSH agent to `stint shell`.
	SSHAgent bool `json:"ssh_agent,omitempty"`
	// Hostname, when set, is the container's host name (and its name on
	// its bridge) instead of Name: a GitLab service's alias. Not a spec key.
	Hostname string `json:"hostname,omitempty"`
	// Target is the cluster member a remote runs it on, as for jobs.
	Target string `json:"target,omitempty"`
	Pos    Pos    `json:"pos"`
}

// Home values of a container.
const (
	HomeImage   = "image"
	HomePersist = "persist"
)

// Profile is a [profile.NAME] table as written (profiles are merged into the
// jobs and containers that name them; this is for inspection).
type Profile struct {
	Name          string            `json:"name"`
	Env           map[string]string `json:"env,omitempty"`
	Workdir       string            `json:"workdir,omitempty"`
	User          string            `json:"user,omitempty"`
	Timeout       Duration          `json:"timeout,omitempty"`
	Shell         string            `json:"shell,omitempty"`
	Mounts        []Mount           `json:"mounts,omitempty"`
	Artifacts     []Artifact        `json:"artifacts,omitempty"`
	Network       *Network          `json:"network,omitempty"`
	Limits        Limits            `json:"limits"`
	Raw           map[string]string `json:"raw,omitempty"`
	Privileged    *bool             `json:"privileged,omitempty"`
	KeepOnFailure *bool             `json:"keep_on_failure,omitempty"`
	HostUser      *bool             `json:"host_user,omitempty"`
	Pos           Pos               `json:"pos"`
}
