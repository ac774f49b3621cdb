package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	stintnet "github.com/stintdev/stint/net"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
)

// A job's services (spec/service.go, docs/spec.md "Services") live and die
// with it. Before the job's container is made, each service gets its own
// container, journalled like any job's (its own state record: a kill -9
// leaves what gc removes), on the job's private bridge (net/private.go),
// named by its service name there; then each ready check runs until it
// passes. Only then is the job made, on the same bridge (network mode
// none: an internal one; bridge: one with a way out) or, in mode host, in
// the host's namespace with the bridge's hosts file at /etc/hosts. After
// the job's own teardown the services go, then the bridge.

// ServiceError is a service that could not serve its job: it did not
// start, its PID 1 ended, or its ready check did not pass in time.
type ServiceError struct {
	Job     string
	Service string
	// NotReady: the service started but never passed its ready check
	// (Check, with its last Status and Output), or its PID 1 ended
	// (Exited); false: it could not be made or started (Err).
	NotReady bool
	Exited   bool
	Timeout  time.Duration
	Check    string
	Status   *container.ExitStatus
	Output   string
	Err      error
}

func (e *ServiceError) Error() string {
	prefix := fmt.Sprintf("job %s: service %s", e.Job, e.Service)
	switch {
	case !e.NotReady:
		return fmt.Sprintf("service %s: %v", e.Service, e.Err) // Err names the job
	case e.Exited:
		return fmt.Sprintf("%s: its command ended before it was ready%s", prefix, outputTail(e.Output))
	case e.Status == nil && e.Err != nil:
		return fmt.Sprintf("%s: not ready after %s: ready check %q: %v", prefix, e.Timeout, e.Check, e.Err)
	default:
		return fmt.Sprintf("%s: not ready after %s: ready check %q: %s%s", prefix, e.Timeout, e.Check, e.Status, outputTail(e.Output))
	}
}

func (e *ServiceError) Unwrap() error { return e.Err }

func outputTail(out string) string {
	out = strings.TrimSpace(out)
	if out == "" {
		return ""
	}
	if len(out) > 400 {
		out = "..." + out[len(out)-400:]
	}
	return ": " + out
}

// services is what startServices made for one job.
type services struct {
	job    string
	bridge string
	insts  []*instance
}

// servicesNetwork makes req (the job's) join the private bridge of its
// services: the bridge replaces modes none and bridge; in mode host the
// job stays in the host's namespace, with the bridge's names bound at
// /etc/hosts.
func (r *Runner) servicesNetwork(req *Request, job spec.Job) string {
	bridge := stintnet.PrivateBridge(req.Container, job.Network.Mode == stintnet.ModeBridge)
	if job.Network.Mode == stintnet.ModeHost {
		req.Mounts = append(slices.Clone(req.Mounts), spec.Mount{Type: spec.MountBind,
			Source: r.Net.HostsFile(bridge), Target: "/etc/hosts", Readonly: true})
		return bridge
	}
	req.Network = spec.Network{Mode: stintnet.ModeBridge, Bridge: bridge}
	return bridge
}

// startServices starts job's services on their private bridge, in the
// order listed, and waits for each one's ready check; it changes req (the
// job's) to join them. The returned services are to be stopped whatever
// the error.
func (r *Runner) startServices(ctx context.Context, job spec.Job, req *Request) (*services, error) {
	if r.Net == nil {
		return nil, fmt.Errorf("job %s: services need a network manager: none configured", job.Name)
	}
	s := &services{job: job.Name, bridge: r.servicesNetwork(req, job)}
	if r.LogDir != "" {
		// The services' consoles are logged there from their start.
		if err := os.MkdirAll(r.LogDir, 0o700); err != nil {
			return s, fmt.Errorf("job %s: log directory: %w", job.Name, err)
		}
	}
	for _, svc := range job.Services {
		req := r.serviceRequest(job, svc, s.bridge)
		// Its console is found by JOB/SERVICE too (stint logs).
		if req.Init.ConsoleLog != "" {
			if err := writeJobName(req.Init.ConsoleLog, req.Name); err != nil {
				return s, &ServiceError{Job: job.Name, Service: svc.Name, Err: err}
			}
		}
		inst, err := r.launch(ctx, req)
		if inst != nil && inst.h != nil {
			s.insts = append(s.insts, inst)
		}
		if err != nil {
			return s, &ServiceError{Job: job.Name, Service: svc.Name, Err: err}
		}
	}
	for i, svc := range job.Services {
		if err := r.waitReady(ctx, job.Name, svc, s.insts[i]); err != nil {
			return s, err
		}
	}
	return s, nil
}

// serviceRequest is the Request of job's service svc on bridge.
func (r *Runner) serviceRequest(job spec.Job, svc spec.Service, bridge string) Request {
	name := ContainerName(job.Name + "-" + svc.Name)
	init := container.Init{Kind: container.InitBoot}
	if len(svc.Command) > 0 {
		init.Kind, init.Command = container.InitCommand, slices.Clone(svc.Command)
	}
	for _, k := range slices.Sorted(maps.Keys(svc.Env)) {
		init.Env = append(init.Env, k+"="+svc.Env[k])
	}
	if r.LogDir != "" {
		init.ConsoleLog = filepath.Join(r.LogDir, name+".log")
	}
	return Request{
		Name: job.Name + "/" + svc.Name, Container: name, Kind: state.KindJob, Image: svc.Image,
		Env: svc.Env, User: "root", Hostname: svc.Name, Ports: svc.Ports,
		Network: spec.Network{Mode: stintnet.ModeBridge, Bridge: bridge},
		Init:    init, Render: true, Start: true,
	}
}

// readyPause is the wait between two ready checks.
const readyPause = 250 * time.Millisecond

// waitReady runs svc's ready check in its container until it exits 0, the
// service's PID 1 ends, or svc.ReadyTimeout passes.
func (r *Runner) waitReady(ctx context.Context, job string, svc spec.Service, inst *instance) error {
	timeout := time.Duration(svc.ReadyTimeout)
	if timeout <= 0 {
		timeout = spec.DefaultReadyTimeout
	}
	if svc.Ready == "" {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	name := inst.req.Container
	last := &ServiceError{Job: job, Service: svc.Name, NotReady: true, Timeout: timeout, Check: svc.Ready}
	for {
		var out capped
		st, err := r.Runtime.Exec(rctx, name, container.ExecOptions{
			Argv: []string{"/bin/sh", "-c", svc.Ready}, Env: inst.env, Stdout: &out, Stderr: &out,
		})
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil && st.Success():
			return nil
		case err == nil:
			last.Status, last.Output, last.Err = &st, out.String(), nil
		case rctx.Err() == nil:
			last.Err = err
		}
		if rs, serr := r.Runtime.State(ctx, name); serr == nil && rs != container.StateRunning {
			last.Exited, last.Output = true, r.consoleTail(inst)
			return last
		}
		select {
		case <-rctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return last
		case <-time.After(readyPause):
		}
	}
}

// consoleTail is the end of a service's console log, if it has one.
func (r *Runner) consoleTail(inst *instance) string {
	p := inst.req.Init.ConsoleLog
	if p == "" {
		return ""
	}
	b, err := readTail(p, 400)
	if err != nil {
		return ""
	}
	return string(b)
}

// stop tears down the services, then their bridge, whatever happened;
// what it could not remove stays journalled for gc.
func (r *Runner) stopServices(ctx context.Context, s *services) error {
	if s == nil {
		return nil
	}
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
	defer cancel()
	var errs []error
	for i := len(s.insts) - 1; i >= 0; i-- {
		if err := r.teardown(tctx, s.insts[i].h); err != nil {
			errs = append(errs, err)
		}
	}
	if err := r.Net.RemovePrivate(tctx, s.bridge); err != nil {
		errs = append(errs, fmt.Errorf("network of job %s: %w", s.job, err))
	}
	return errors.Join(errs...)
}

// gcPrivateNets removes the private bridges no container uses any more
// (a job killed with -9, its records torn down by gc).
func (r *Runner) gcPrivateNets(ctx context.Context, res *GCResult) {
	if r.Net == nil {
		return
	}
	removed, err := r.Net.PrunePrivate(ctx)
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
	}
	for _, b := range removed {
		res.Removed = append(res.Removed, "network "+b)
	}
}

// attachLease attaches req's container: to a job's private bridge with
// its own rules, else as its mode says.
func (r *Runner) attachLease(ctx context.Context, req Request) (*stintnet.Lease, error) {
	if stintnet.IsPrivateBridge(req.Network.Bridge) {
		return r.Net.AttachPrivate(ctx, req.netRequest())
	}
	return r.Net.Attach(ctx, req.netRequest())
}

// capped keeps the last 4 KiB written to it: a ready check's output.
type capped struct{ b []byte }

func (c *capped) Write(p []byte) (int, error) {
	c.b = append(c.b, p...)
	if len(c.b) > 4096 {
		c.b = append(c.b[:0], c.b[len(c.b)-4096:]...)
	}
	return len(p), nil
}

func (c *capped) String() string { return string(c.b) }

// readTail reads the last n bytes of file p.
func readTail(p string, n int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(fi.Size()-n, 0)
	b := make([]byte, fi.Size()-off)
	_, err = f.ReadAt(b, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

// jobServices starts job's services (startServices) for RunJob, which
// calls servicesDone with what it returns on every path. ok says whether
// the job may go on; if not, res says why: a service not ready is the
// job's failure, one that could not be made the host's.
func (r *Runner) jobServices(ctx context.Context, job spec.Job, req *Request, res *Result) (*services, bool) {
	t := time.Now()
	s, err := r.startServices(ctx, job, req)
	var se *ServiceError
	switch {
	case err == nil:
		r.phase(job.Name, "services", t)
		return s, true
	case ctx.Err() != nil: // SIGINT, SIGTERM: as a job's line would say
		res.Outcome, res.Error = OutcomeAborted, "aborted while starting services: "+context.Cause(ctx).Error()
	case errors.As(err, &se) && se.NotReady:
		res.Outcome, res.Error = OutcomeFailed, err.Error()
	default:
		r.hostErr(ctx, res, err)
	}
	return s, false
}

// servicesDone stops what jobServices started; what it could not remove
// makes a passed job a host failure.
func (r *Runner) servicesDone(ctx context.Context, s *services, res *Result) {
	if err := r.stopServices(ctx, s); err != nil {
		res.Error = joinMsg(res.Error, err.Error())
		if res.Outcome == OutcomePassed {
			res.Outcome = OutcomeError
		}
	}
}
