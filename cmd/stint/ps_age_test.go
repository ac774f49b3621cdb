package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestPsAgeGarbled: a creation time a garbled record makes up (the year 1
// but not zero, the far future) has no age either.
func TestPsAgeGarbled(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, created := range []time.Time{
		time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC),
		time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
		now.Add(time.Hour),
		time.Unix(0, 0),
	} {
		assert.Equal(t, "-", age(created, now), "created %s", created)
	}
	assert.Equal(t, "48h0m0s", age(now.Add(-48*time.Hour), now))
	assert.Equal(t, "0s", age(now.Add(time.Second/3), now), "a clock a little behind the record's")
}
