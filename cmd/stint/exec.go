package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/spec"
)

// ExecCmd runs one command in an ad hoc ephemeral container.
type ExecCmd struct {
	Image      string            `arg:"" help:"Image: an alias, a fingerprint prefix, or busybox (built on first use)."`
	Cmd        []string          `arg:"" passthrough:"" name:"CMD" help:"The command and its arguments (after --)."`
	Mount      []string          `short:"m" placeholder:"SRC:DST[:ro]" help:"Bind-mount a host path (repeatable)."`
	Env        map[string]string `short:"e" placeholder:"K=V" help:"Set an environment variable (repeatable)."`
	Timeout    time.Duration     `help:"Kill the container after this long (0: no limit)."`
	Privileged bool              `help:"Run without a user namespace (container root is host root)."`
	Network    string            `default:"none" enum:"none,host" help:"Network: none (loopback only) or host."`
	Workdir    string            `short:"w" help:"Working directory inside the container."`
	User       string            `short:"u" help:"User to run as (name or uid in the container)."`
}

// Run starts the container, runs the command with this process's streams,
// tears down, and exits with the command's exit code.
func (c *ExecCmd) Run(g *Globals) error {
	argv := c.Cmd
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		return withCode(ExitUsage, errors.New("stint exec: no command (stint exec IMAGE -- CMD...)"))
	}
	// An unknown image is a usage error, checked like run's before touching
	// the host; busybox is built on first use.
	if known := runImageKnown(g.Root); c.Image != "busybox" && known != nil && !known(c.Image) {
		if err := imageAmbiguous(g.Root, c.Image); err != nil {
			return withCode(ExitUsage, fmt.Errorf("stint exec: %w", err))
		}
		return withCode(ExitUsage, fmt.Errorf("stint exec: image %q not found (stint image list shows the local images)", c.Image))
	}
	job := spec.Job{
		Name: "exec", Image: c.Image, Env: c.Env, Workdir: c.Workdir, User: c.User,
		Timeout: spec.Duration(c.Timeout), Privileged: c.Privileged, Network: spec.Network{Mode: c.Network},
	}
	for _, m := range c.Mount {
		mnt, err := parseMount(m)
		if err != nil {
			return withCode(ExitUsage, err)
		}
		job.Mounts = append(job.Mounts, mnt)
	}
	tty := term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd()))
	if tty && job.Env["TERM"] == "" && os.Getenv("TERM") != "" {
		if job.Env == nil {
			job.Env = map[string]string{}
		}
		job.Env["TERM"] = os.Getenv("TERM")
	}

	ctx, stop := signalContext(g.Stderr)
	if tty {
		// On a terminal, Ctrl-C and Ctrl-\ are for the command inside (the
		// terminal sends them to it too); SIGTERM still tears down. Caught
		// and dropped rather than ignored: SIG_IGN would be inherited.
		drop := make(chan os.Signal, 1)
		signal.Notify(drop, syscall.SIGINT, syscall.SIGQUIT)
		defer signal.Stop(drop)
		stop()
		ctx, stop = signalContextFor(g.Stderr, syscall.SIGTERM)
	}
	defer stop()
	// The busybox image needs no spec: the Host builds it on first use.
	h, err := g.openHost(ctx, runner.Options{Containers: true})
	if err != nil {
		return err
	}
	defer h.Close()
	// With a terminal, the command gets a terminal of its own (see
	// exec_pty.go); without, our streams, but never a terminal of ours:
	// `stint exec IMG -- cmd > log` from a shell still has one on stdin.
	var opts container.ExecOptions
	if !tty {
		stdin, stdout, stderr, unshield, err := shieldTerminals(os.Stdin, os.Stdout, os.Stderr)
		if err != nil {
			return withCode(ExitHost, err)
		}
		defer unshield()
		opts = container.ExecOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr}
	}
	var st container.ExitStatus
	if tty {
		// A terminal of the container's own (see exec_pty.go), back to
		// normal before any message.
		st, err = h.ExecTerminal(ctx, job, argv, terminal(os.Stdin, os.Stdout, g.Stderr))
	} else {
		st, err = h.Exec(ctx, job, argv, opts)
	}
	if err != nil {
		if errors.Is(err, runner.ErrTimedOut) {
			return withCode(ExitJobFail, err)
		}
		// A remote's errors carry their code: 2 for what it can't do
		// (a read-write bind over HTTPS, host networking), 3 for a failure.
		return hostCode(err)
	}
	if st.OOM {
		fmt.Fprintf(g.Stderr, "stint exec: %s\n", st)
	}
	if st.Code != 0 {
		return withCode(st.Code, errors.New(""))
	}
	return nil
}

// parseMount reads SRC:DST[:ro|rw].
func parseMount(s string) (spec.Mount, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return spec.Mount{}, fmt.Errorf("--mount %q: want SRC:DST[:ro]", s)
	}
	src, err := filepath.Abs(parts[0])
	if err != nil {
		return spec.Mount{}, fmt.Errorf("--mount %q: %w", s, err)
	}
	if _, err := os.Stat(src); err != nil {
		return spec.Mount{}, fmt.Errorf("--mount %q: %w", s, err)
	}
	if !filepath.IsAbs(parts[1]) {
		return spec.Mount{}, fmt.Errorf("--mount %q: the target must be an absolute path", s)
	}
	m := spec.Mount{Type: spec.MountBind, Source: src, Target: parts[1]}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.Readonly = true
		case "rw":
		default:
			return spec.Mount{}, fmt.Errorf("--mount %q: option %q is not ro or rw", s, parts[2])
		}
	}
	return m, nil
}
