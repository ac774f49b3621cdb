package main

import (
	"errors"
	"os"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/runner"
)

// imageAmbiguous is the store's *images.AmbiguousError for ref (a bare
// spec image name that several sets have, or a short fingerprint prefix),
// or nil: it says which names to choose from where "not found" would not.
func imageAmbiguous(root, ref string) error {
	dir := runner.Layout{Root: root}.Images()
	if _, err := os.Stat(dir); err != nil {
		return nil // no store: nothing to choose from (and none made)
	}
	store, err := images.Open(dir)
	if err != nil {
		return nil
	}
	var amb *images.AmbiguousError
	if _, err := store.Resolve(ref); errors.As(err, &amb) {
		return err
	}
	return nil
}
