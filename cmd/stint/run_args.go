package main

import (
	"errors"
	"io/fs"
	"os"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/stintdev/stint/runner"
)

// hoistFlags returns args with the flags of command cmd (and their values)
// moved ahead of its positional arguments, so that `stint run td.toml -j 2
// fail` parses like `stint run -j 2 td.toml fail`. Kong fills a slice
// positional up to the first flag and refuses any positional after it
// ("unexpected argument"). Which flags take a value is read from app's
// model; everything after "--" is positional.
func hoistFlags(app *kong.Application, cmd string, args []string) []string {
	var node *kong.Node
	for _, c := range app.Children {
		if c.Name == cmd {
			node = c
		}
	}
	if node == nil {
		return args
	}
	takesValue := map[string]bool{}
	for _, group := range node.AllFlags(false) {
		for _, f := range group {
			if f.IsBool() || f.IsCounter() {
				continue
			}
			takesValue["--"+f.Name] = true
			if f.Short != 0 {
				takesValue["-"+string(f.Short)] = true
			}
		}
	}
	// Find the command word: the first positional, skipping global flags'
	// values.
	at := -1
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return args
		}
		if strings.HasPrefix(a, "-") {
			if takesValue[a] {
				i++
			}
			continue
		}
		if a == cmd {
			at = i
		}
		break
	}
	if at < 0 {
		return args
	}
	var flags, positional, dashes []string
	rest := args[at+1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		switch {
		case a == "--":
			// The end of flags ends them before every positional too:
			// kong takes the slice's values in one go.
			dashes = []string{"--"}
			positional = append(positional, rest[i+1:]...)
			i = len(rest)
		case strings.HasPrefix(a, "-") && a != "-":
			flags = append(flags, a)
			if takesValue[a] && i+1 < len(rest) {
				flags = append(flags, rest[i+1])
				i++
			}
		default:
			positional = append(positional, a)
		}
	}
	out := append([]string(nil), args[:at+1]...)
	out = append(out, flags...)
	out = append(out, dashes...)
	return append(out, positional...)
}

// runImageKnown is validate's image check for run: a root without an image
// store yet knows no image (run would create the store, empty), so an
// unknown reference is a usage error at its file:line:col, not a host
// failure in the middle of the job.
func runImageKnown(root string) func(string) bool {
	if known := imageKnown(root); known != nil {
		return known
	}
	if _, err := os.Stat(runner.Layout{Root: root}.Images()); errors.Is(err, fs.ErrNotExist) {
		return func(ref string) bool { return runner.IsPullRef(root, ref) }
	}
	return nil
}

// startsContainers lists the commands whose first act on this host is to
// start a container: they ready the host for it before anything else
// (runner.PrimeStarts), while the command line and specs are parsed.
var startsContainers = map[string]bool{"run": true, "exec": true}

// remoteArg reports whether args or the environment (STINT_REMOTE) name a
// remote: the containers then start there, and this host needs no priming.
func remoteArg(args []string, getenv func(string) string) bool {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--remote" || strings.HasPrefix(a, "--remote=") {
			return true
		}
	}
	return getenv("STINT_REMOTE") != ""
}

// globalValueFlags are the global flags (Globals) that take a value as
// the next argument. commandWord runs before any kong model is built (the
// full one costs 1.7 ms): TestGlobalValueFlags checks this list against it.
var globalValueFlags = map[string]bool{"--root": true, "--log-level": true, "--remote": true}

// commandWord returns the command of args (the first positional, skipping
// the values of the global flags that take one), "" if none.
func commandWord(args []string) string {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--":
			return ""
		case globalValueFlags[a]:
			i++
		case !strings.HasPrefix(a, "-"):
			return a
		}
	}
	return ""
}
