package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/internal/rootfs"
	stintnet "github.com/stintdev/stint/net"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
)

// A recipe ([image.X] from = "Y") is built in an ephemeral container of
// Y, made and torn down exactly like a job's (state record first, clone,
// start; teardown on every path, gc after a crash), on the host network so
// that packages can be installed:
//
//  1. the recipe's steps (recipe_steps.go): repositories, hooks before
//     packages, packages (apt-get install -y, apk add or dnf install -y,
//     whichever the base has), files (copied from the host into the clone,
//     parents made, modes kept, owned by the container's root), hooks (run
//     with /bin/sh, in order); the first failure fails the build;
//  2. the container stops and its rootfs is published as a new image, its
//     owners shifted back to container ids so the image is portable.
//
// The image carries the recipe's cache key (images.Recipe.Key) as its
// stint.build property: an unchanged recipe on an unchanged base is found
// there and never rebuilt; builds of one key are serialised across
// processes by the store's build lock.

// hookDir is where hooks are copied inside the build container; it is
// removed before the rootfs is published.
const hookDir = "/.stint-hooks"

// HookError is a recipe hook that failed: its image, its file (as the spec
// names it), its position and how it ended.
type HookError struct {
	Image string
	Hook  string
	Index int // 1-based, among the hooks run before packages or after
	// BeforePackages: a hook marked before = "packages".
	BeforePackages bool
	Status         container.ExitStatus
}

func (e *HookError) Error() string {
	when := ""
	if e.BeforePackages {
		when = " (before packages)"
	}
	return fmt.Sprintf("image %s: hook %d%s %s: %s", e.Image, e.Index, when, e.Hook, e.Status)
}

// Build makes the set's [image.NAME], whatever its kind: a recipe is built
// in a container of s.Recipes, the others by images.BuildSpec. Every build
// is cached by its inputs (the store's build lock serialises builds of the
// same inputs); aliases are added to the image, and SET/NAME (see
// images.SpecAlias).
func (s *StoreImages) Build(ctx context.Context, name string, aliases []string) (*images.Image, error) {
	if def := s.def(name); def != nil {
		return s.buildDef(ctx, *def, aliases)
	}
	return nil, fmt.Errorf("image %s: %w: no [image.%s] in the spec", name, images.ErrNotFound, name)
}

// def is the set's [image.name], or nil.
func (s *StoreImages) def(name string) *spec.Image {
	if s.Set == nil {
		return nil
	}
	for i := range s.Set.Images {
		if s.Set.Images[i].Name == name {
			return &s.Set.Images[i]
		}
	}
	return nil
}

// buildDef makes def (busybox and debootstrap builds and recipes are
// cached by their inputs, a source is imported once, a remote image pulled
// once), adds aliases, and names it SET/NAME: a new build of def takes
// the name from the one before, which image prune then removes.
func (s *StoreImages) buildDef(ctx context.Context, def spec.Image, aliases []string) (*images.Image, error) {
	var img *images.Image
	var err error
	switch {
	case def.From != "":
		img, err = s.buildRecipe(ctx, def, aliases)
	case def.Pull != "":
		img, err = s.pullDef(ctx, def, aliases)
	default:
		img, err = images.BuildSpec(ctx, s.Store, def, images.SpecOptions{Aliases: aliases})
	}
	if err != nil {
		return nil, err
	}
	if s.Set.Name == "" || // a set made in code, not loaded: no name to scope by
		slices.Contains(img.Aliases, images.SpecAlias(s.Set.Name, def.Name)) && img.Properties[images.SupersededProperty] == "" {
		return img, nil // named already: no store lock, no write
	}
	return s.Store.NameForSpec(s.Set.Name, def.Name, img.Fingerprint)
}

// buildChain is the context key of the recipes being built, outermost first.
type buildChain struct{}

// buildRecipe resolves def's base (building it too when it is an image of
// the set, recipes included), and returns the image of def's recipe,
// building it unless the store has it.
func (s *StoreImages) buildRecipe(ctx context.Context, def spec.Image, aliases []string) (*images.Image, error) {
	chain, _ := ctx.Value(buildChain{}).([]string)
	if slices.Contains(chain, def.Name) {
		return nil, fmt.Errorf("image %s derives from itself: %s -> %s", def.Name, strings.Join(chain, " -> "), def.Name)
	}
	chain = append(slices.Clip(chain), def.Name)
	base, err := s.resolve(context.WithValue(ctx, buildChain{}, chain), def.From)
	if err != nil {
		return nil, fmt.Errorf("image %s: base: %w", def.Name, err)
	}
	rec, err := images.LoadRecipe(def, base)
	if err != nil {
		return nil, err
	}
	key, err := rec.Key()
	if err != nil {
		return nil, err
	}
	img, unlock, err := s.Store.LockBuild(ctx, key, aliases)
	if img != nil || err != nil {
		return img, err
	}
	defer unlock()
	if s.Recipes == nil {
		return nil, fmt.Errorf("image %s: a recipe is built in a container, and no runner is configured", def.Name)
	}
	baseImg, err := s.image(base)
	if err != nil {
		return nil, err
	}
	baseImg.Defaults = ImageDefaults{} // a build runs as root in /, whatever the base asks of jobs
	return s.Recipes.buildRecipe(ctx, s.Store, baseImg, base, rec, key, aliases)
}

// fixedImage resolves every reference to one image: the build container's.
type fixedImage struct{ img Image }

func (f fixedImage) ResolveImage(context.Context, string) (Image, error) { return f.img, nil }

// buildRecipe runs rec in an ephemeral container of base and publishes the
// result with key; everything it made is torn down whatever happens.
func (r *Runner) buildRecipe(ctx context.Context, store *images.Store, baseImg Image, base *images.Image, rec *images.Recipe, key string, aliases []string) (out *images.Image, err error) {
	if container.CapabilitiesOf(r.Runtime).ImageRoot {
		// A recipe writes into its build container's local root: it is
		// built here on local LXC, then uploaded like any image (remote.go).
		return r.buildRecipeLocally(ctx, store, baseImg, base, rec, key, aliases)
	}
	// A runner of its own whose resolver returns the base resolved here:
	// r.Images may be another resolver, or one holding this recipe's lock.
	br := &Runner{Runtime: r.Runtime, Storage: r.Storage, State: r.State, Images: fixedImage{baseImg}, IDMap: r.IDMap, LogDir: r.LogDir, Net: r.Net}
	req := jobRequest(spec.Job{Name: "image-" + rec.Name, Image: base.Fingerprint, Network: spec.Network{Mode: stintnet.ModeHost}}, state.KindJob)
	br.session(ctx, req, func(inst *instance, launchErr error) bool {
		if launchErr != nil {
			err = fmt.Errorf("image %s: build container: %w", rec.Name, launchErr)
			return false
		}
		out, err = r.runRecipe(ctx, br, inst, store, base, rec, key, aliases)
		return false
	}, func(_ bool, terr error, _ time.Time) {
		if terr != nil {
			err = errors.Join(err, terr)
			out = nil
		}
	})
	return out, err
}

// runRecipe runs rec's steps in the build container inst and publishes its
// root as an image.
func (r *Runner) runRecipe(ctx context.Context, br *Runner, inst *instance, store *images.Store, base *images.Image, rec *images.Recipe, key string, aliases []string) (*images.Image, error) {
	name := inst.req.Container
	// Ctrl-C or SIGTERM kills the container, so a running hook ends.
	stopOnDone := context.AfterFunc(ctx, func() { _ = br.Runtime.Stop(context.WithoutCancel(ctx), name) })
	defer stopOnDone()

	logw, logPath, err := br.openLog(name, "")
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", rec.Name, err)
	}
	defer logw.Close()
	// The build log has it all; the terminal only with BuildOutput (-v),
	// else a failure shows the last lines.
	tail := &tailWriter{}
	out := io.MultiWriter(logw, tail)
	if r.BuildOutput != nil {
		pw := &prefixWriter{mu: &r.outMu, w: r.BuildOutput, prefix: "[image " + rec.Name + "] "}
		defer pw.Flush()
		out = io.MultiWriter(logw, pw)
	}
	b := &recipeBuild{r: br, rec: rec, name: name, rootfs: inst.vol.Rootfs, env: JobEnv(map[string]string{"STINT_IMAGE": rec.Name}, inst.user), out: out}
	steps, err := recipeSteps(rec, b.packageManager())
	if err != nil {
		return nil, err
	}
	if err := b.run(ctx, steps); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("image %s: aborted: %w", rec.Name, context.Cause(ctx))
		}
		le := &BuildLogError{Err: err, Log: logPath}
		if r.BuildOutput == nil {
			le.Tail = tail.Tail()
		}
		return nil, le
	}
	if err := br.Runtime.Stop(context.WithoutCancel(ctx), name); err != nil {
		return nil, fmt.Errorf("image %s: %w", rec.Name, err)
	}
	if err := b.neutralHost(); err != nil {
		return nil, err
	}
	// The hooks, and the mount points of the runtime's own init (lxcrt's
	// /.stint), are the build's, not the image's.
	for _, d := range []string{hookDir, "/.stint"} {
		p, err := securejoin.SecureJoin(b.rootfs, d)
		if err == nil {
			err = os.RemoveAll(p)
		}
		if err != nil {
			return nil, fmt.Errorf("image %s: remove %s: %w", rec.Name, d, err)
		}
	}
	img, err := images.Publish(ctx, store, b.rootfs, base, images.PublishOptions{
		Name: rec.Name, Key: key, Properties: rec.Properties, Aliases: aliases, Owner: br.unshift,
	})
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", rec.Name, err)
	}
	fmt.Fprintf(out, "built %s\n", img.Fingerprint)
	return img, nil
}

// unshift maps an owner in an unprivileged container's rootfs (host ids)
// back to the container's ids.
func (r *Runner) unshift(uid, gid int) (int, int, error) {
	m := r.IDMap
	if uid < int(m.HostUID) || uid >= int(m.HostUID)+int(m.Size) || gid < int(m.HostGID) || gid >= int(m.HostGID)+int(m.Size) {
		return 0, 0, fmt.Errorf("owner %d:%d is outside the container's id map (uid %d, gid %d, %d ids)", uid, gid, m.HostUID, m.HostGID, m.Size)
	}
	return uid - int(m.HostUID), gid - int(m.HostGID), nil
}

// recipeBuild is one build's running container.
type recipeBuild struct {
	r      *Runner
	rec    *images.Recipe
	name   string // the container
	rootfs string // its clone, as the host sees it
	env    []string
	out    io.Writer
}

// exec runs argv as the container's root; a failure names what.
func (b *recipeBuild) exec(what string, argv ...string) (container.ExitStatus, error) {
	fmt.Fprintf(b.out, "+ %s\n", what)
	st, err := b.r.Runtime.Exec(context.Background(), b.name, container.ExecOptions{Argv: argv, Env: b.env, Cwd: "/", Stdout: b.out, Stderr: b.out})
	if err != nil {
		return st, fmt.Errorf("image %s: %s: %w", b.rec.Name, what, err)
	}
	return st, nil
}

// has reports whether the container has an executable file at p.
func (b *recipeBuild) has(p string) bool {
	hp, err := securejoin.SecureJoin(b.rootfs, p)
	if err != nil {
		return false
	}
	st, err := os.Stat(hp)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// put writes data at container path target in the clone, resolved inside
// it (never through a symlink out of it), with missing parent directories
// (0755); everything it makes is owned by the container's root. The
// container runs meanwhile: every step goes through descriptors confined to
// the clone (internal/rootfs), so a process swapping a directory for a
// symlink cannot make it write on the host.
func (b *recipeBuild) put(target string, data []byte, mode fs.FileMode) error {
	uid, gid := int(b.r.IDMap.HostUID), int(b.r.IDMap.HostGID)
	root, err := rootfs.OpenRoot(b.rootfs)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	dir, err := rootfs.MkdirAllIn(root, path.Dir(target), 0o755, func(fd int) error { return unix.Fchown(fd, uid, gid) })
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	// O_NONBLOCK: a fifo planted at target fails (ENXIO) instead of hanging.
	fd, err := unix.Openat(dir, path.Base(target), unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("open %s: %w", target, err)
	}
	f := os.NewFile(uintptr(fd), target)
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file in the container", target)
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	// Owner before mode: chown clears setuid and setgid.
	if err := f.Chown(uid, gid); err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		return err
	}
	return f.Close()
}
