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

// exitError carries an exit code with a message; an empty message prints nothing.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// ExitCode is what the process exits with.
func (e *exitError) ExitCode() int { return e.code }

// withCode wraps err so that the process exits with code.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, msg: err.Error()}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
