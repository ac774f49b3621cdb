package lxdrt

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	lxd "github.com/canonical/lxd/client"
	"github.com/canonical/lxd/shared/api"
	"github.com/canonical/lxd/shared/ioprogress"

	"github.com/stintdev/stint/runner/container"
)

// Create makes the instance from cfg, stopped (CreateWith, no options).
func (r *Runtime) Create(ctx context.Context, name string, cfg container.Config) error {
	return r.CreateWith(ctx, name, cfg, CreateOptions{})
}

// CreateWith is Create with placement, tags and ports. A failed create
// leaves no instance behind (the image and cache volumes stay: they are
// meant to be reused).
func (r *Runtime) CreateWith(ctx context.Context, name string, cfg container.Config, o CreateOptions) error {
	if cfg.Root.Image == nil || cfg.Root.Image.Fingerprint == "" {
		return r.unsupported(name, "a root directory (this runtime makes roots from images)")
	}
	inst, _, err := r.c.GetInstance(InstanceName(name))
	if err == nil {
		return r.fail(name, "create", fmt.Errorf("instance %s: %w", inst.Name, container.ErrExists))
	} else if !notFound(err) {
		return r.fail(name, "create", err)
	}
	nics, err := r.profileNICs()
	if err != nil {
		return r.fail(name, "create", err)
	}
	p, err := r.render(name, cfg, o, nics)
	if err != nil {
		return err
	}
	if err := r.ensureImage(ctx, cfg.Root.Image); err != nil {
		return r.fail(name, "upload image", err)
	}
	c, op0 := r.c, "create"
	if o.Target != "" {
		c, op0 = c.UseTarget(o.Target), "create on member "+o.Target
	}
	op, err := c.CreateInstance(api.InstancesPost{
		Name:        InstanceName(name),
		Type:        api.InstanceTypeContainer,
		Source:      api.InstanceSource{Type: "image", Fingerprint: cfg.Root.Image.Fingerprint},
		InstancePut: api.InstancePut{Config: p.config, Devices: p.devices, Profiles: []string{"default"}, Ephemeral: ephemeral(cfg, o)},
	})
	if err == nil {
		if err = op.WaitContext(ctx); err != nil && ctx.Err() != nil {
			// Cancelled: the server goes on creating. Let it finish, so
			// that the delete below finds the instance.
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			_ = op.WaitContext(wctx)
			cancel()
		}
	}
	if err != nil {
		switch {
		case api.StatusErrorCheck(err, http.StatusConflict):
			return r.fail(name, op0, fmt.Errorf("%w: %w", container.ErrExists, err)) // not ours to delete
		case o.Target != "" && api.StatusErrorCheck(err, http.StatusNotFound):
			return &UsageError{Remote: r.opts.Remote, Instance: name, Err: fmt.Errorf("target %q: %w", o.Target, err)}
		case len(cfg.Raw) > 0 && api.StatusErrorCheck(err, http.StatusBadRequest):
			// Bad input the server saw is most likely the user's raw keys:
			// they reach LXD unchecked.
			return &UsageError{Remote: r.opts.Remote, Instance: name, Err: fmt.Errorf("the remote refused the instance's config (check the raw keys): %w", err)}
		}
		r.deleteQuietly(name)
		return r.fail(name, op0, err)
	}
	if err := r.finishCreate(ctx, name, p); err != nil {
		r.deleteQuietly(name)
		return err
	}
	return nil
}

// ephemeral: a job's (or exec's) instance is ephemeral while it runs, so
// LXD deletes it when its member stops it after stint died; a long-lived
// container (its own command or the image's init) is not, or a member's
// reboot would delete it.
func ephemeral(cfg container.Config, o CreateOptions) bool {
	return !o.Persistent && cfg.Init.Kinded() == container.InitMinimal
}

// finishCreate attaches cache volumes (made on the instance's own member
// on a cluster, where pools are per member) and copies read-only binds in.
func (r *Runtime) finishCreate(ctx context.Context, name string, p plan) error {
	if p.init != "" {
		err := r.c.CreateInstanceFile(InstanceName(name), initPath, lxd.InstanceFileArgs{
			Type: "file", Mode: 0o755, Content: strings.NewReader(p.init), WriteMode: "overwrite"})
		if err != nil {
			return r.fail(name, "write init", err)
		}
	}
	if len(p.volumes) > 0 {
		inst, etag, err := r.instance(name)
		if err != nil {
			return err
		}
		if inst == nil {
			return r.fail(name, "create", fmt.Errorf("instance %s vanished: %w", InstanceName(name), container.ErrNotFound))
		}
		pool, err := r.pool()
		if err != nil {
			return r.fail(name, "cache volume", err)
		}
		put := inst.Writable()
		for i, m := range p.volumes {
			vol, err := r.ensureVolume(pool, m.Volume, inst.Location)
			if err != nil {
				return r.fail(name, "cache volume "+m.Volume, err)
			}
			put.Devices[fmt.Sprintf("stint-volume-%d", i)] = map[string]string{"type": "disk", "pool": pool, "source": vol, "path": m.Target}
		}
		op, err := r.c.UpdateInstance(inst.Name, put, etag)
		if err == nil {
			err = op.WaitContext(ctx)
		}
		if err != nil {
			return r.fail(name, "attach cache volumes", err)
		}
	}
	for i, m := range p.copies {
		if err := r.copyIn(ctx, name, i+1, m.Source, m.Target); err != nil {
			return r.fail(name, "copy bind "+m.Source+" to "+m.Target, err)
		}
	}
	return nil
}

// profileNICs names the nic devices of the default profile.
func (r *Runtime) profileNICs() ([]string, error) {
	prof, _, err := r.c.GetProfile("default")
	if err != nil {
		return nil, err
	}
	var nics []string
	for n, d := range prof.Devices {
		if d["type"] == "nic" {
			nics = append(nics, n)
		}
	}
	return nics, nil
}

// ensureImage uploads img unless the remote has its fingerprint; uploads
// of one image are serialised, and LXD must compute the same fingerprint.
func (r *Runtime) ensureImage(ctx context.Context, img *container.ImageRef) error {
	fp := img.Fingerprint
	r.mu.Lock()
	lk := r.uploads[fp]
	if lk == nil {
		lk = new(sync.Mutex)
		r.uploads[fp] = lk
	}
	r.mu.Unlock()
	lk.Lock()
	defer lk.Unlock()
	if _, _, err := r.c.GetImage(fp); err == nil {
		return nil
	} else if !notFound(err) {
		return err
	}
	if img.Open == nil {
		return fmt.Errorf("image %s is not on the remote and has no files to upload", fp)
	}
	files, err := img.Open(ctx)
	if err != nil {
		return fmt.Errorf("open image %s: %w", fp, err)
	}
	defer files.Close()
	args := &lxd.ImageCreateArgs{MetaFile: files.Meta, MetaName: "meta"}
	if files.Rootfs != nil {
		args.RootfsFile, args.RootfsName = files.Rootfs, "rootfs"
	}
	if r.opts.Progress != nil {
		args.ProgressHandler = func(p ioprogress.ProgressData) { r.opts.Progress(fp, p) }
	}
	op, err := r.c.CreateImage(api.ImagesPost{}, args)
	if err == nil {
		err = op.WaitContext(ctx)
	}
	if err != nil {
		// Another client may have uploaded it meanwhile.
		if _, _, gerr := r.c.GetImage(fp); gerr == nil {
			return nil
		}
		return fmt.Errorf("image %s: %w", fp, err)
	}
	// The remote names the image by the fingerprint it computed: it must
	// be stint's, or every later job would upload it again.
	if _, _, err := r.c.GetImage(fp); err != nil {
		got, _ := op.Get().Metadata["fingerprint"].(string)
		return fmt.Errorf("image %s: uploaded, but the remote does not know it by that fingerprint (it computed %q): %w", fp, got, err)
	}
	return nil
}

// Start starts the instance and makes its copied binds read-only.
func (r *Runtime) Start(ctx context.Context, name string) error {
	inst, _, err := r.instance(name)
	if err != nil {
		return err
	}
	if inst == nil {
		return r.fail(name, "start", container.ErrNotFound)
	}
	if err := r.setState(ctx, inst.Name, "start"); err != nil {
		return r.fail(name, "start", err)
	}
	if binds := inst.Config[keyBinds]; binds != "" {
		if err := r.readonly(ctx, name, strings.Split(binds, "\n")); err != nil {
			_ = r.Stop(context.WithoutCancel(ctx), name)
			return r.fail(name, "make binds read-only", err)
		}
	}
	return nil
}

// bindScript extracts the i-th bind's tarball (entries rooted at /) for
// each target, then bind-mounts the target onto itself read-only (the
// container's root may, in its own mount namespace), and removes the
// tarballs. A persistent instance started again has its binds extracted
// already (the tarballs are gone): they are only made read-only again.
const bindScript = `i=0
for t do
  i=$((i+1))
  { [ ! -f "` + bindsDir + `/$i.tar" ] || tar -xf "` + bindsDir + `/$i.tar" -C /; } && mount --bind "$t" "$t" && mount -o remount,bind,ro "$t" || exit 1
done
rm -rf "` + bindsDir + `"`

// readonly puts the copied binds in place, read-only, before the first
// command runs (the image needs sh, tar and mount: busybox has them).
func (r *Runtime) readonly(ctx context.Context, name string, targets []string) error {
	var out strings.Builder
	st, err := r.Exec(ctx, name, container.ExecOptions{
		Argv:   append([]string{"/bin/sh", "-c", bindScript, "sh"}, targets...),
		Env:    []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		Stdout: &out, Stderr: &out,
	})
	if err != nil {
		return err
	}
	if !st.Success() {
		return fmt.Errorf("%s: %s", st, strings.TrimSpace(out.String()))
	}
	return nil
}

func (r *Runtime) setState(ctx context.Context, inst, action string) error {
	op, err := r.c.UpdateInstanceState(inst, api.InstanceStatePut{Action: action, Timeout: -1, Force: true}, "")
	if err == nil {
		err = op.WaitContext(ctx)
	}
	return err
}

// Stop kills every process of the instance and leaves it stopped: it
// clears the ephemeral flag first, or LXD would delete it.
func (r *Runtime) Stop(ctx context.Context, name string) error {
	inst, etag, err := r.instance(name)
	if err != nil || inst == nil || inst.StatusCode == api.Stopped {
		return err
	}
	if inst.Ephemeral {
		put := inst.Writable()
		put.Ephemeral = false
		op, err := r.c.UpdateInstance(inst.Name, put, etag)
		if err == nil {
			err = op.WaitContext(ctx)
		}
		if err != nil && !notFound(err) {
			return r.fail(name, "stop", err)
		}
	}
	err = r.setState(ctx, inst.Name, "stop")
	if err != nil && !notFound(err) && !errors.Is(r.stoppedNow(name), errStopped) {
		return r.fail(name, "stop", err)
	}
	return nil
}

var errStopped = errors.New("stopped")

// stoppedNow reports errStopped when the instance is stopped or gone (a
// stop that raced with PID 1 exiting).
func (r *Runtime) stoppedNow(name string) error {
	st, err := r.State(context.Background(), name)
	if err == nil && (st == container.StateStopped || st == container.StateAbsent) {
		return errStopped
	}
	return err
}

// Destroy force-deletes the instance (running or not). An absent one is
// no error; one that is not stint's is refused.
func (r *Runtime) Destroy(ctx context.Context, name string) error {
	inst, _, err := r.instance(name)
	if err != nil || inst == nil {
		return err
	}
	return r.remove(ctx, name, inst)
}

// remove stops and deletes inst, the instance behind name.
func (r *Runtime) remove(ctx context.Context, name string, inst *api.Instance) error {
	if inst.StatusCode != api.Stopped {
		if err := r.setState(ctx, inst.Name, "stop"); err != nil && !notFound(err) && !errors.Is(r.stoppedNow(name), errStopped) {
			return r.fail(name, "destroy", err)
		}
	}
	for try := 0; ; try++ {
		op, err := r.c.DeleteInstance(inst.Name)
		if err == nil {
			err = op.WaitContext(ctx)
		}
		// Another operation (a stop of a timed-out job, LXD's own after a
		// failed start, or its delete of the ephemeral instance just
		// stopped) still runs: the delete waits for it, up to 30 s.
		if err != nil && strings.Contains(err.Error(), "is busy running") && try < 600 && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		// A start the caller cancelled went on on the server and finished
		// after the look above: stop it now, then delete.
		if err != nil && try < 600 && ctx.Err() == nil {
			if st, serr := r.State(ctx, name); serr == nil && st == container.StateRunning {
				if serr := r.setState(ctx, inst.Name, "stop"); serr == nil || notFound(serr) {
					continue
				}
			}
		}
		if err != nil && !notFound(err) {
			return r.fail(name, "destroy", err)
		}
		return nil
	}
}

// deleteQuietly removes what a failed Create made, without masking its
// error.
func (r *Runtime) deleteQuietly(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = r.Destroy(ctx, name)
}

// Freeze freezes every process of the running instance (LXD's freeze);
// Stop and Destroy still work on a frozen instance.
func (r *Runtime) Freeze(ctx context.Context, name string) error {
	inst, _, err := r.instance(name)
	if err != nil {
		return err
	}
	if inst == nil {
		return r.fail(name, "freeze", container.ErrNotFound)
	}
	if inst.StatusCode != api.Running {
		return r.fail(name, "freeze", container.ErrNotRunning)
	}
	op, err := r.c.UpdateInstanceState(inst.Name, api.InstanceStatePut{Action: "freeze", Timeout: -1}, "")
	if err == nil {
		err = op.WaitContext(ctx)
	}
	return r.fail(name, "freeze", err)
}

// FileImage is the ImageRef of an image whose files are on this host in
// LXD's format (the image store's: meta is the unified tarball or the
// metadata tarball, rootfs the split rootfs or ""), opened only when the
// remote lacks the fingerprint.
func FileImage(fingerprint, meta, rootfs string) *container.ImageRef {
	return &container.ImageRef{Fingerprint: fingerprint, Open: func(context.Context) (container.ImageFiles, error) {
		var f container.ImageFiles
		m, err := os.Open(meta)
		if err != nil {
			return f, err
		}
		f.Meta = m
		if rootfs != "" {
			if f.Rootfs, err = os.Open(rootfs); err != nil {
				m.Close()
				return container.ImageFiles{}, err
			}
		}
		return f, nil
	}}
}
