package main

import (
	"encoding/json"
	"io"
)

// Exit codes, as DESIGN.md fixes them.
const (
	ExitOK      = 0 // every job passed
	ExitJobFail = 1 // a job failed; its own code is reported per job
	ExitUsage   = 2 // bad spec or usage
	ExitHost    = 3 // a host/system failure: storage, LXC, network
)

// exitError carries an exit code with the error it wraps, whose message it
// prints (an empty one prints nothing). The chain stays: errors.Is and
// errors.As see through it to the typed errors beneath.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// Unwrap returns the wrapped error.
func (e *exitError) Unwrap() error { return e.err }

// ExitCode is what the process exits with.
func (e *exitError) ExitCode() int { return e.code }

// withCode wraps err so that the process exits with code.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
