package gitlab

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/stintdev/stint/internal/lazyre"
)

// Service is one entry of a job's `services:`. The runner passes them as
// CUSTOM_ENV_CI_JOB_SERVICES, a JSON array of {name, alias, entrypoint,
// command, variables} (gitlab-runner executors/custom/custom.go,
// jsonService); only the first of a service's aliases is passed.
type Service struct {
	Name       string            `json:"name"` // the image, as the job wrote it
	Alias      string            `json:"alias"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Command    []string          `json:"command,omitempty"`
	Variables  map[string]string `json:"variables,omitempty"`

	// Filled by the driver in prepare.
	Image     string `json:"image,omitempty"`     // the stint reference chosen for Name
	Container string `json:"container,omitempty"` // its container's name
}

// hostName is a valid DNS name of labels joined by dots, the form a service
// alias must have to be resolvable from the job's container.
var hostName = lazyre.New(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

// ParseServices reads CUSTOM_ENV_CI_JOB_SERVICES. The runner always sets
// it; without services it is empty. A service without an alias gets one
// from its image name as docker does ("tutum/wordpress:4" is reachable as
// "tutum-wordpress"). An alias that is no DNS label, or two services with
// one alias, is an error wrapping ErrBadService.
func ParseServices(value string) ([]Service, error) {
	value = strings.TrimSpace(value)
	if value == "" || value == "null" {
		return nil, nil
	}
	var svcs []Service
	if err := json.Unmarshal([]byte(value), &svcs); err != nil {
		return nil, fmt.Errorf("%w: CI_JOB_SERVICES is not the runner's JSON: %w", ErrBadService, err)
	}
	seen := map[string]bool{}
	for i := range svcs {
		s := &svcs[i]
		if strings.TrimSpace(s.Name) == "" {
			return nil, fmt.Errorf("%w: service %d has no image name", ErrBadService, i)
		}
		if s.Alias == "" {
			s.Alias = defaultAlias(s.Name)
		}
		if len(s.Alias) > 253 || !hostName.MatchString(s.Alias) {
			return nil, fmt.Errorf("%w: service %s: alias %q is not a host name (a-z, 0-9, - and dots)", ErrBadService, s.Name, s.Alias)
		}
		if seen[s.Alias] {
			return nil, fmt.Errorf("%w: two services named %q", ErrBadService, s.Alias)
		}
		seen[s.Alias] = true
	}
	return svcs, nil
}

// defaultAlias is docker's dash form of a service's image name: the tag or
// digest dropped, "/" (and a registry's ":port") replaced by "-".
func defaultAlias(image string) string {
	name := image
	if i := strings.LastIndex(name, "@"); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	return strings.ToLower(strings.NewReplacer("/", "-", ":", "-").Replace(name))
}
