// Package runner drives stint's containers: ephemeral jobs (clone, start,
// run, collect artifacts, tear down), execs, recipe builds and long-lived
// containers, through the runtime contract of runner/container, so that
// nothing LXC-specific lives in the lifecycle itself.
package runner
