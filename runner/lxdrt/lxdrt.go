// Package lxdrt runs stint's containers as instances of an LXD or Incus
// server or cluster, over its REST API (github.com/canonical/lxd/client),
// behind the same contract as the local LXC runtime (runner/container).
//
// # How the contract maps onto LXD
//
//   - Create: the image (Config.Root.Image) is uploaded once by fingerprint
//     (LXD's own image format: stint's fingerprints are LXD's) and reused;
//     then the instance is created from it, stopped (LXD 5.0's two steps:
//     create, then start). It is ephemeral while it runs, so an instance a
//     crashed stint left running is gone after the member stops it.
//     Read-only binds are copied in through the file API.
//   - Start starts it, then makes the copied binds read-only in place.
//   - Exec goes through the exec API with live streamed output; the
//     environment is exactly ExecOptions.Env (LXD adds PATH, HOME, USER and
//     LANG of its own, so the command runs under `env -i`: the image needs
//     an env program, as every distribution and busybox has). With a
//     terminal (OpenTerminal, then ExecOptions.TTY) it is LXD's
//     interactive exec: the terminal is LXD's, in the instance; the
//     pair on this host only carries its bytes and window size.
//   - Stop clears the ephemeral flag and force-stops (the contract wants a
//     stopped container, not a deleted one); Destroy deletes.
//   - Files reads the instance's files through the file API, which resolves
//     paths inside the instance's root; a symlink is reported as a link,
//     never followed.
//
// # Ownership
//
// Every instance stint makes carries user.stint.* config keys: owner (the
// client's root, see OwnerID), name (the contract's name, which LXD may not
// accept as is), and the Tags of CreateOptions (set, job, journal id, the
// client's host and pid). List, State, Stop, Destroy and GC only ever see
// instances whose owner key is this runtime's: an instance without it is
// never touched, even under a name stint would use.
//
// # What differs from local
//
// Host paths are not on the remote: a read-write bind is refused with a
// *UsageError (exit 2) unless the remote is a local unix socket, where it
// becomes a disk device; raw LXC keys ("lxc.*") are refused the same way,
// while keys spelled as LXD config keys ("security.nesting",
// "limits.cpu.priority") pass through to the instance's config. Host
// networking is refused; bridge mode attaches the remote's network.
package lxdrt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	lxd "github.com/canonical/lxd/client"
	"github.com/canonical/lxd/shared/api"
	"github.com/canonical/lxd/shared/ioprogress"

	"github.com/stintdev/stint/internal/lazyre"
	"github.com/stintdev/stint/remote"
	"github.com/stintdev/stint/runner/container"
)

// Config keys stint sets on its instances.
const (
	keyPrefix = "user.stint."
	keyOwner  = keyPrefix + "owner"
	keyName   = keyPrefix + "name"
	keyBinds  = keyPrefix + "ro-binds" // targets made read-only at Start
)

// Options configure a Runtime.
type Options struct {
	// Remote names the remote in errors.
	Remote string
	// Owner is the owner key of every instance (OwnerID of the client's
	// --root); required: it is how stint tells its instances from others.
	Owner string
	// Network is the remote network a bridge-mode container attaches to;
	// empty: the NIC of the remote's default profile.
	Network string
	// Pool is the storage pool of cache volumes; empty: the pool of the
	// default profile's root disk.
	Pool string
	// LocalDisks: the remote is a daemon on this host (a unix socket), so
	// a read-write bind can be a disk device of the host path.
	LocalDisks bool
	// Progress, when set, is told how an image upload goes.
	Progress func(fingerprint string, p ioprogress.ProgressData)
}

// Runtime is a container.Runtime on an LXD server or cluster. It is safe
// for concurrent use.
type Runtime struct {
	c    lxd.InstanceServer
	opts Options

	mu      sync.Mutex
	uploads map[string]*sync.Mutex // per image fingerprint
}

var (
	_ container.Runtime    = (*Runtime)(nil)
	_ container.Capable    = (*Runtime)(nil)
	_ container.FileReader = (*Runtime)(nil)
	_ container.Freezer    = (*Runtime)(nil)
)

// New returns a Runtime on the server c (see remote.Store.Connect).
func New(c lxd.InstanceServer, opts Options) (*Runtime, error) {
	if opts.Owner == "" {
		return nil, fmt.Errorf("lxd runtime on remote %q: no owner", opts.Remote)
	}
	for _, ext := range requiredExtensions {
		if !c.HasExtension(ext) {
			return nil, &Error{Remote: opts.Remote, Op: "connect", Err: fmt.Errorf("the server lacks API extension %q (LXD 5.0 has it): %w", ext, container.ErrUnsupported)}
		}
	}
	return &Runtime{c: c, opts: opts, uploads: map[string]*sync.Mutex{}}, nil
}

// requiredExtensions are the API extensions stint relies on, all in LXD
// 5.0 (and Incus): without file_get_symlink the file API would follow a
// symlink out of the instance instead of reporting it.
var requiredExtensions = []string{"file_get_symlink", "container_exec_user_group_cwd", "proxy"}

// OwnerID is the owner key for a stint root on this host: host name and
// the root's absolute path, so two clients never claim each other's
// instances on a shared remote.
func OwnerID(root string) string {
	host, _ := os.Hostname()
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	return host + ":" + root
}

// Capabilities: LXD makes roots from images, keeps volumes, and binds are
// copied (except on a local socket, where read-write binds still work).
func (r *Runtime) Capabilities() container.Capabilities {
	return container.Capabilities{ImageRoot: true, CopiedBinds: true, Volumes: true}
}

// Error is a failure on the remote (the network, the server's refusal of
// a valid request); the CLI exits 3.
type Error struct {
	Remote   string
	Instance string // the contract's name, "" when none
	Op       string
	Err      error
}

func (e *Error) Error() string {
	if e.Instance == "" {
		return fmt.Sprintf("remote %q: %s: %v", e.Remote, e.Op, e.Err)
	}
	return fmt.Sprintf("remote %q: %s %s: %v", e.Remote, e.Op, e.Instance, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ExitCode is 3: a host or system failure.
func (e *Error) ExitCode() int { return 3 }

// UsageError is a Config this runtime refuses (a read-write bind, a raw
// LXC key, host networking); it wraps container.ErrUnsupported. Exit 2.
type UsageError struct {
	Remote   string
	Instance string
	Err      error
}

func (e *UsageError) Error() string {
	return fmt.Sprintf("remote %q: container %s: %v", e.Remote, e.Instance, e.Err)
}

// Unwrap returns the cause.
func (e *UsageError) Unwrap() error { return e.Err }

// ExitCode is 2: bad spec or usage.
func (e *UsageError) ExitCode() int { return 2 }

// ErrNotOwned is an instance under a stint name that stint did not make:
// it is never stopped or deleted.
var ErrNotOwned = errors.New("instance is not stint's (no matching user.stint.owner)")

func (r *Runtime) fail(name, op string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Remote: r.opts.Remote, Instance: name, Op: op, Err: err}
}

func (r *Runtime) unsupported(name string, format string, args ...any) error {
	return &UsageError{Remote: r.opts.Remote, Instance: name,
		Err: fmt.Errorf("%s: %w on a remote", fmt.Sprintf(format, args...), container.ErrUnsupported)}
}

func notFound(err error) bool { return api.StatusErrorCheck(err, http.StatusNotFound) }

var lxdNameRE = lazyre.New(`^[a-zA-Z][a-zA-Z0-9-]{0,62}$`)

// InstanceName is the LXD instance name for a contract name: the name
// itself when LXD accepts it, else a sanitised prefix and a hash of it
// (stored in user.stint.name, so List gives the contract's names back);
// either way a leading "stint-" becomes "stintr-". LXC names an instance's
// cgroups after it (lxc.payload.NAME), and a local stint's gc removes the
// empty cgroups of "stint-" names it holds no record of: an instance of a
// daemon on this host (a unix:// remote) named so lost its cgroups while
// it started ("lxd forkstart ... exit status 1") whenever a local
// `stint run` or `gc` swept at that moment.
func InstanceName(name string) string {
	n := lxdName(name)
	if n == name && strings.HasPrefix(n, remotePrefix) {
		n = hashedName(name) // never the same as a renamed "stint-" name
	}
	if rest, ok := strings.CutPrefix(n, localPrefix); ok {
		if len(n) >= 63 {
			rest = strings.TrimPrefix(hashedName(name), localPrefix)
		}
		n = remotePrefix + rest
	}
	return n
}

// The prefix of local job names, and what it becomes on a remote.
const (
	localPrefix  = "stint-"
	remotePrefix = "stintr-"
)

// lxdName is name if LXD accepts it, else hashedName.
func lxdName(name string) string {
	if lxdNameRE.MatchString(name) && !strings.HasSuffix(name, "-") {
		return name
	}
	return hashedName(name)
}

// hashedName is a sanitised prefix of name (at most 45 characters) and
// 12 hex digits of its hash: a valid LXD name, distinct per name.
func hashedName(name string) string {
	var b strings.Builder
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			if s := b.String(); s != "" && !strings.HasSuffix(s, "-") {
				b.WriteByte('-')
			}
		}
	}
	s := strings.TrimRight(b.String(), "-")
	if len(s) > 45 {
		s = strings.TrimRight(s[:45], "-")
	}
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		s = "s" + s
	}
	sum := sha256.Sum256([]byte(name))
	return s + "-" + hex.EncodeToString(sum[:])[:12]
}

// instance returns the instance behind name when it is ours; nil, nil when
// there is none; ErrNotOwned when it is someone else's.
func (r *Runtime) instance(name string) (*api.Instance, string, error) {
	inst, etag, err := r.c.GetInstance(InstanceName(name))
	if notFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", r.fail(name, "get", err)
	}
	if inst.Config[keyOwner] != r.opts.Owner || inst.Config[keyName] != name {
		return nil, "", r.fail(name, "get", fmt.Errorf("instance %s: %w", inst.Name, ErrNotOwned))
	}
	return inst, etag, nil
}

// State reports where the container is.
func (r *Runtime) State(ctx context.Context, name string) (container.State, error) {
	inst, _, err := r.instance(name)
	if err != nil || inst == nil {
		return container.StateAbsent, err
	}
	return stateOf(inst.StatusCode), nil
}

func stateOf(code api.StatusCode) container.State {
	switch code {
	case api.Running:
		return container.StateRunning
	case api.Stopped:
		return container.StateStopped
	}
	return container.StateOther
}

// List names the containers of this runtime's owner.
func (r *Runtime) List(ctx context.Context) ([]string, error) {
	insts, err := r.Instances(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(insts))
	for _, i := range insts {
		names = append(names, i.Name)
	}
	return names, nil
}

// Connect opens the Runtime for the lxd remote called name in the store
// (the Host's one call for `--remote NAME`): the remote's network, local
// disks on a unix socket, and the owner key of root. Close releases it.
func Connect(ctx context.Context, store *remote.Store, name, root string) (*Runtime, error) {
	r, c, err := store.ConnectName(ctx, name)
	if err != nil {
		return nil, err
	}
	return New(c, Options{Remote: r.Name, Owner: OwnerID(root), Network: r.Network, LocalDisks: r.Unix()})
}

// Close disconnects from the remote.
func (r *Runtime) Close() error {
	r.c.Disconnect()
	return nil
}
