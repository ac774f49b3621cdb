// Command stint-agent is PID 1 of a stint job's container on the fast path:
// it runs the job's lines one after another as the runtime asks, on the
// pipes it inherits (fd 3: requests, fd 4: reports), and reaps orphans.
// See internal/agent for the protocol. Build it static, so it runs in any
// image: CGO_ENABLED=0 go build ./cmd/stint-agent.
package main

import (
	"os"

	"github.com/stintdev/stint/internal/agent"
)

func main() { os.Exit(agent.Main()) }
