package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"golang.org/x/term"

	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/spec"
)

// ShellCmd enters a container: a login shell, or a command.
type ShellCmd struct {
	Name    string   `arg:"" help:"A kept job (job or container name, as stint ps shows it), a running long-lived container, or a container of the spec set here."`
	Cmd     []string `arg:"" optional:"" passthrough:"" name:"CMD" help:"A command instead of a login shell (after --)."`
	File    []string `short:"f" type:"existingpath" placeholder:"FILE|DIR" help:"The spec set (default: the current directory's *.toml)."`
	User    string   `short:"u" help:"User to enter as (default: the container's user; the host user with host_user; root)."`
	Workdir string   `short:"w" help:"Directory to start in (default: the container's workdir, else the user's home)."`
}

// Run enters the container and exits with the command's exit code.
func (c *ShellCmd) Run(g *Globals) error {
	argv := c.Cmd
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	set, err := c.set()
	if err != nil {
		return err
	}
	tty := term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd()))
	ctx, stop := signalContext(g.Stderr)
	if tty {
		// On a terminal, Ctrl-C and Ctrl-\ are the shell's (the terminal
		// sends them to it as bytes); SIGTERM still ends stint.
		drop := make(chan os.Signal, 1)
		signal.Notify(drop, syscall.SIGINT, syscall.SIGQUIT)
		defer signal.Stop(drop)
		stop()
		ctx, stop = signalContextFor(g.Stderr, syscall.SIGTERM)
	}
	defer stop()
	h, err := g.openHost(ctx, runner.Options{Containers: true, Set: set})
	if err != nil {
		return err
	}
	defer h.Close()
	req := runner.ShellRequest{Name: c.Name, Set: set, Argv: argv, User: c.User, Workdir: c.Workdir,
		Note: func(msg string) { fmt.Fprintf(g.Stderr, "stint shell: %s\n", msg) }}
	req.Cwd, _ = os.Getwd()
	if tty {
		req.Term = os.Getenv("TERM")
		req.Terminal = terminal(os.Stdin, os.Stdout, g.Stderr)
	} else {
		stdin, stdout, stderr, unshield, err := shieldTerminals(os.Stdin, os.Stdout, os.Stderr)
		if err != nil {
			return withCode(ExitHost, err)
		}
		defer unshield()
		req.Stdin, req.Stdout, req.Stderr = stdin, stdout, stderr
	}
	st, err := h.Shell(ctx, req)
	switch {
	case errors.Is(err, runner.ErrNoShellTarget), errors.Is(err, runner.ErrNotRunning):
		return withCode(ExitUsage, err)
	case err != nil:
		return hostCode(err) // a remote's carry their code (2: it can't, 3: it failed)
	case st.OOM || st.Signal != 0:
		fmt.Fprintf(g.Stderr, "stint shell: %s\n", st)
	}
	if st.Code != 0 {
		return withCode(st.Code, errors.New(""))
	}
	return nil
}

// set loads the spec set of -f, or of the current directory when it has
// specs; nil when there is none (a kept job or a running container needs
// none).
func (c *ShellCmd) set() (*spec.Set, error) {
	paths := c.File
	if len(paths) == 0 {
		if m, _ := filepath.Glob("*.toml"); len(m) == 0 {
			return nil, nil
		}
		paths = []string{"."}
	}
	return loadSet(paths)
}
