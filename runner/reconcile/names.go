package reconcile

import (
	"regexp"
	"strings"
)

var unsafeSetChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// RuntimeName is the runtime (LXC) name of container name of set: the set's
// name made safe, a dot, the container's name. Container names have no dot
// (spec), so the part after the last dot is always the container's name.
func RuntimeName(set, name string) string {
	prefix := strings.Trim(unsafeSetChars.ReplaceAllString(set, "-"), "-")
	if max := 63 - len(name); len(prefix) > max {
		prefix = prefix[:max]
	}
	return prefix + "." + name
}

// SpecName is the spec container name of a runtime name.
func SpecName(runtimeName string) string {
	return runtimeName[strings.LastIndexByte(runtimeName, '.')+1:]
}
