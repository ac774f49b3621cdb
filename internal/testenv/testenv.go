// Package testenv gates integration tests on what the host offers.
//
// A gate skips the test in a plain `go test` (so a developer without root can
// run the unit tests), and fails it instead when STINT_INTEGRATION=1, which
// .ci/run sets: CI can never pass by skipping what it claims to test.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Integration reports whether integration tests were requested.
func Integration() bool { return os.Getenv("STINT_INTEGRATION") == "1" }

// Unavailable skips t, or fails it under STINT_INTEGRATION=1, saying why.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if Integration() {
		t.Fatalf("STINT_INTEGRATION=1 but %s", why)
	}
	t.Skipf("skipping integration test: %s (set STINT_INTEGRATION=1 to make this a failure)", why)
}

// RequiresRoot gates a test that needs root.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "the test needs root")
	}
}

// RequiresTool gates a test on an executable being on PATH.
func RequiresTool(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			Unavailable(t, "the test needs "+n+" on PATH")
		}
	}
}

// RequiresLXC gates a test that starts real LXC containers: root and liblxc.
func RequiresLXC(t testing.TB) {
	t.Helper()
	RequiresRoot(t)
	RequiresTool(t, "lxc-start")
}
