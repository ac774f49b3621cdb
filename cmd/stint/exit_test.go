package main

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/stintdev/stint/runner/reconcile"
)

// TestWithCodeKeepsChain: the exit code wraps the error, it does not flatten
// it: errors.As and errors.Is still reach the typed error beneath, and the
// outermost code is the one the process exits with.
func TestWithCodeKeepsChain(t *testing.T) {
	owned := &reconcile.SetOwnedError{Set: "app", Dir: "/x"}
	err := withCode(ExitUsage, fmt.Errorf("list containers of set app: %w", owned))
	var got *reconcile.SetOwnedError
	assert.ErrorAs(t, err, &got)
	assert.Equal(t, "/x", got.Dir)
	assert.ErrorIs(t, withCode(ExitHost, fmt.Errorf("x: %w", io.EOF)), io.EOF)
	assert.Equal(t, "list containers of set app: "+owned.Error(), err.Error())
	assert.Equal(t, ExitJobFail, report(io.Discard, withCode(ExitJobFail, withCode(ExitHost, errors.New("inner")))))
	assert.Nil(t, withCode(ExitHost, nil))
}
