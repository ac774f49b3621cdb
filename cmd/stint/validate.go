package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/spec"
)

// ValidateCmd checks spec files and prints the resolved set.
type ValidateCmd struct {
	Paths []string `arg:"" name:"FILE|DIR" help:"Spec files or directories (a directory means its *.toml files); all form one set."`
}

// Run validates; every problem goes to stderr (and, with --json, to stdout
// as {"problems": [...]}) and the exit code is 2.
func (c *ValidateCmd) Run(g *Globals) error {
	set, err := spec.Load(c.Paths, spec.Options{ImageKnown: imageKnown(g.Root)})
	if err != nil {
		// --json: the problems on stdout for machines too; stderr has the text.
		var perr *spec.Errors
		if g.JSON && errors.As(err, &perr) {
			if werr := writeJSON(g.Stdout, perr); werr != nil {
				return werr
			}
		}
		return withCode(ExitUsage, err)
	}
	if g.JSON {
		return writeJSON(g.Stdout, set)
	}
	fmt.Fprintf(g.Stdout, "ok: set %q (%s): %s, %s, %s, %s\n", set.Name, plural(len(set.Files), "file"),
		plural(len(set.Jobs), "job"), plural(len(set.Containers), "container"),
		plural(len(set.Images), "image"), plural(len(set.Profiles), "profile"))
	for _, j := range set.Jobs {
		fmt.Fprintf(g.Stdout, "  job %s\n", j.Name)
	}
	for _, ct := range set.Containers {
		fmt.Fprintf(g.Stdout, "  container %s\n", ct.Name)
	}
	return nil
}

// imageKnown checks image references against the local image store when
// there is one under root; validate never creates it.
func imageKnown(root string) func(string) bool {
	dir := runner.Layout{Root: root}.Images()
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	store, err := images.Open(dir)
	if err != nil {
		return nil
	}
	return func(ref string) bool {
		_, err := store.Resolve(ref)
		return err == nil || runner.IsPullRef(root, ref)
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
