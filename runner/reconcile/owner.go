package reconcile

import "fmt"

// SetOwnedError: a set of this name was applied from specs in another
// directory, Dir. Without a `name` key a set is named after its directory,
// so two unrelated projects in directories both called app would otherwise
// delete each other's containers.
type SetOwnedError struct {
	Set, Dir string
}

func (e *SetOwnedError) Error() string {
	return fmt.Sprintf("set %s is owned by specs in %s; give this set its own `name` or run down there first", e.Set, e.Dir)
}
