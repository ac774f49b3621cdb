package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/lxdrt"
	"github.com/stintdev/stint/spec"
)

// `stint shell` and `stint logs` on a remote (--remote NAME). A kept job
// has its record and shell info here, as locally; its instance is started
// for the shell and stopped after it. A long-lived container has neither:
// the remote's instance is the truth, found by its tags, its spec read
// from them. The user is looked up in the instance's /etc/passwd and
// /etc/group, read through the file API (never through a symlink).

// remoteLongLivedSet is the set of the remote's long-lived instance
// rtName; ok is false when the runtime is local or has none of that name.
func (r *Runner) remoteLongLivedSet(ctx context.Context, rtName string) (set string, ok bool, err error) {
	lrt, isLXD := r.Runtime.(*lxdrt.Runtime)
	if !isLXD {
		return "", false, nil
	}
	es, err := (&remoteLongLived{r: r, rt: lrt}).entries(ctx)
	if err != nil {
		return "", false, err
	}
	for _, e := range es {
		if e.Name == rtName {
			return e.Set, true, nil
		}
	}
	return "", false, nil
}

// specOf is long-lived container rtName's resolved spec: stored beside
// its record locally, in its instance's tags on a remote.
func (b *LongLived) specOf(ctx context.Context, rtName string) (*spec.Container, error) {
	if b.remote == nil {
		return b.readSpec(rtName)
	}
	all, err := b.remote.rt.Instances(ctx)
	if err != nil {
		return nil, err
	}
	for _, i := range all {
		if i.Name != rtName || i.Tags[tagKind] != "container" {
			continue
		}
		var c spec.Container
		if err := json.Unmarshal([]byte(i.Tags[tagSpec]), &c); err != nil {
			return nil, fmt.Errorf("spec in the tags of %s: %w", rtName, err)
		}
		return &c, nil
	}
	return nil, fmt.Errorf("%s: %w", rtName, container.ErrNotFound)
}

// userRoot is a directory whose etc/passwd and etc/group are running
// container name's, for LookupUser: its root locally; on a runtime that
// makes roots from images (a remote), a temporary copy of the two files
// read through its file API, which done removes.
func (r *Runner) userRoot(ctx context.Context, name string) (root string, done func(), err error) {
	if rd, ok := r.Runtime.(container.RootDirer); ok && !container.CapabilitiesOf(r.Runtime).ImageRoot {
		root, err := rd.RootDir(ctx, name)
		return root, func() {}, err
	}
	fr, ok := r.Runtime.(container.FileReader)
	if !ok {
		return "", nil, fmt.Errorf("users of %s: the runtime has no file API: %w", name, container.ErrUnsupported)
	}
	fsys, err := fr.Files(ctx, name)
	if err != nil {
		return "", nil, fmt.Errorf("users of %s: %w", name, err)
	}
	dir, err := os.MkdirTemp("", "stint-user-")
	if err != nil {
		return "", nil, fmt.Errorf("users of %s: %w", name, err)
	}
	done = func() { os.RemoveAll(dir) }
	if err := os.Mkdir(filepath.Join(dir, "etc"), 0o700); err != nil {
		done()
		return "", nil, fmt.Errorf("users of %s: %w", name, err)
	}
	for _, f := range []string{"etc/passwd", "etc/group"} {
		b, err := fs.ReadFile(fsys, f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, f), b, 0o600)
		}
		if err != nil {
			done()
			return "", nil, fmt.Errorf("users of %s: /%s: %w", name, f, err)
		}
	}
	return dir, done, nil
}
