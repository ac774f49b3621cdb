// Command stint runs Linux system containers from declarative TOML specs.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/stintdev/stint/runner"
)

// version is set by the Makefile (-ldflags "-X main.version=...").
var version = "dev"

// Globals are the flags every command sees.
type Globals struct {
	Root     string `help:"Directory holding everything stint owns." env:"STINT_ROOT" default:"/var/lib/stint" type:"path"`
	JSON     bool   `help:"Machine-readable output: JSON only on stdout."`
	LogLevel string `help:"Log level: debug, info, warn, error." default:"warn" enum:"debug,info,warn,error"`
	Remote   string `help:"Run containers on this remote (an LXD or Incus server added with 'stint remote add') instead of local LXC." env:"STINT_REMOTE"`
	Verbose  bool   `short:"v" help:"Stream image builds' output (packages, hooks, files), each line prefixed [image NAME]; without it, it goes to the build log and a failure shows its last lines."`

	Stdout io.Writer `kong:"-"`
	Stderr io.Writer `kong:"-"`
}

// openHost opens --root through the runner's front door; a failure is the
// host's (exit 3).
func (g *Globals) openHost(ctx context.Context, opts runner.Options) (*runner.Host, error) {
	opts.Remote = g.Remote
	h, err := runner.Open(ctx, g.Root, opts)
	if err != nil {
		return nil, hostCode(err)
	}
	return h, nil
}

// CLI is stint's command line. Each command is a struct with a Run method;
// commands appear here only once they work.
type CLI struct {
	Globals

	Version VersionCmd `cmd:"" help:"Print stint's version."`
	Check   CheckCmd   `cmd:"" help:"Check what this host offers: storage drivers, namespaces, cgroups, id ranges."`
	Run     RunCmd     `cmd:"" help:"Run jobs ephemerally: clone, run, collect artifacts, tear down."`
	Exec    ExecCmd    `cmd:"" help:"Run a command in an ad hoc ephemeral container (like lxc-start-ephemeral)."`
	Shell   ShellCmd   `cmd:"" help:"Enter a container: a kept job, a running one, or the spec set's (made first if missing)."`
	Ps      PsCmd      `cmd:"" help:"List the containers stint owns."`
	Gc      GcCmd      `cmd:"" help:"Remove what dead stint processes left behind."`
	Net     NetCmd     `cmd:"" help:"Inspect and prune stint's networks."`
	Image   ImageCmd   `cmd:"" help:"Manage the image store: import, list, export, build, prune."`
	Remote  RemoteCmd  `cmd:"" help:"Manage remotes: LXD or Incus servers that run jobs with --remote, and image servers."`

	Validate ValidateCmd `cmd:"" help:"Check spec files; print the resolved set with --json."`
	Plan     PlanCmd     `cmd:"" help:"Show what apply would change in the long-lived containers of a spec set (exit 4: changes pending)."`
	Apply    ApplyCmd    `cmd:"" help:"Bring the long-lived containers of a spec set to what its specs say."`
	Down     DownCmd     `cmd:"" help:"Remove every long-lived container a spec set owns."`
	Restart  RestartCmd  `cmd:"" help:"Stop long-lived containers and start them again (with the env and limits apply recorded)."`
	Watch    WatchCmd    `cmd:"" help:"Reconcile a spec set on every change of its files, and on drift."`
	Logs     LogsCmd     `cmd:"" help:"Print a long-lived container's console log."`

	Gitlab GitlabCmd `cmd:"" name:"gitlab" help:"GitLab Runner custom executor driver: config, prepare, run, cleanup."`
}

// hotCLI is the command line of the commands whose start-up time counts,
// run and exec: kong builds its model by reflection over every command
// and flag (1.7 ms for CLI, 0.1 ms for these two), so they parse with a
// model of only themselves; their flags, help and errors are CLI's
// (TestHotCLIMatchesCLI keeps the two in step).
type hotCLI struct {
	Globals

	Run  RunCmd  `cmd:"" help:"Run jobs ephemerally: clone, run, collect artifacts, tear down."`
	Exec ExecCmd `cmd:"" help:"Run a command in an ad hoc ephemeral container (like lxc-start-ephemeral)."`
}

// buildOutput is where recipe builds stream their output: w with -v;
// nil (their build logs only) without.
func (g *Globals) buildOutput(w io.Writer) io.Writer {
	if !g.Verbose {
		return nil
	}
	return w
}

// VersionCmd prints the version.
type VersionCmd struct{}

// Run prints the version.
func (VersionCmd) Run(g *Globals) error {
	if g.JSON {
		return writeJSON(g.Stdout, map[string]string{"version": version})
	}
	_, err := fmt.Fprintf(g.Stdout, "stint %s\n", version)
	return err
}

func main() {
	runner.Reexec() // the hidden helper subcommands; closes inherited fds
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, runs the command and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	word := commandWord(args)
	if startsContainers[word] && !remoteArg(args, os.Getenv) {
		runner.PrimeStarts()
	}
	cli := CLI{Globals: Globals{Stdout: stdout, Stderr: stderr}}
	var model any = &cli
	g := &cli.Globals
	if word == "run" || word == "exec" {
		hot := &hotCLI{Globals: cli.Globals}
		model, g = hot, &hot.Globals
	}
	exitCode := -1
	parser, err := kong.New(model,
		kong.Name("stint"),
		kong.Description("Run Linux system containers from declarative TOML specs."),
		kong.UsageOnError(),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exitCode = code; panic(kongExit{}) }),
	)
	if err != nil {
		fmt.Fprintf(stderr, "stint: %v\n", err)
		return ExitHost
	}
	code := func() (code int) {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(kongExit); !ok {
					panic(r)
				}
				code = exitCode
				if code != 0 {
					code = ExitUsage
				}
			}
		}()
		kctx, err := parser.Parse(hoistFlags(parser.Model, "run", args))
		if err != nil {
			fmt.Fprintf(stderr, "stint: %v\n", err)
			return ExitUsage
		}
		setupLogging(g.LogLevel, stderr)
		if err := needsRoot(kctx.Command(), g.Remote, os.Geteuid()); err != nil {
			return report(stderr, err)
		}
		if err := kctx.Run(g); err != nil {
			return report(stderr, err)
		}
		return ExitOK
	}()
	return code
}

// rootCommands make, enter or remove local containers, or the networks and
// mounts they use: they need root. Others (validate, plan, ps, logs, image
// list, remote) work for any user who can read --root.
var rootCommands = map[string]bool{
	"run": true, "exec": true, "shell": true, "gc": true, "apply": true, "down": true, "watch": true,
	"image build": true, "net prune": true, "gitlab prepare": true, "gitlab run": true, "gitlab cleanup": true,
}

// needsRoot is the one line a user who is not root gets for a command that
// needs it (a host failure, exit 3), instead of the first EPERM on the
// way. On a remote the server makes the containers: no root needed.
func needsRoot(command, remote string, euid int) error {
	var words []string
	for _, w := range strings.Fields(command) {
		if !strings.HasPrefix(w, "<") {
			words = append(words, w)
		}
	}
	cmd := strings.Join(words, " ")
	if euid == 0 || remote != "" || !rootCommands[cmd] {
		return nil
	}
	return withCode(ExitHost, fmt.Errorf("stint %s needs root: only root can make, enter or remove LXC containers with their id-mapped clones, cgroups and mounts under --root; run it with sudo (or on a server with --remote NAME)", cmd))
}

// kongExit unwinds out of kong after --help or a usage error.
type kongExit struct{}

func setupLogging(level string, w io.Writer) {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	slog.SetDefault(slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})))
}

// report prints err and maps it to an exit code.
func report(stderr io.Writer, err error) int {
	var coder interface{ ExitCode() int }
	if errors.As(err, &coder) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(stderr, msg)
		}
		return coder.ExitCode()
	}
	fmt.Fprintf(stderr, "stint: %v\n", err)
	return ExitHost
}
