package gitlab

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/stintdev/stint/spec"
)

// Config is the driver config file, given to every subcommand as
// `--config FILE`: what an administrator lets the runner's jobs ask for.
// See docs/gitlab.md for the reference.
type Config struct {
	File string // the file it was read from, absolute

	Root          string   // stint's --root
	DefaultImage  string   // the image of a job that names none
	AllowedImages []string // path.Match patterns over the chosen reference; nil: any
	DefaultRemote string   // where a job's image is looked up when it is no local alias
	Shell         string   // "", "sh" or "bash": overrides the runner's shell when set
	BuildsDir     string   // inside the container (default /builds)
	CacheDir      string   // inside the container (default /cache)
	Profile       Profile
	Cache         CachePolicy
}

// Profile is what every job's container gets.
type Profile struct {
	Limits  spec.Limits
	Network string            // none (default) | host | bridge
	Env     map[string]string // added to each script's environment
}

// Cache scopes: which jobs share one cache volume.
const (
	CacheProject = "project" // one volume per GitLab project (the default)
	CacheRunner  = "runner"  // one volume per runner, all its projects
	CacheNone    = "none"    // no volume: the cache dir dies with the container
)

// Cache commit policies, as for a spec's cache mount.
const (
	CommitOnSuccess = "on_success"
	CommitAlways    = "always"
	CommitNever     = "never"
)

// CachePolicy decides the cache volume mounted at the cache dir.
type CachePolicy struct {
	Scope  string // project | runner | none
	Commit string // on_success | always | never
}

// ConfigProblem is one thing wrong in a driver config file.
type ConfigProblem struct {
	File string
	Line int // 1-based; 0 when unknown
	Key  string
	Msg  string
}

func (p ConfigProblem) Error() string {
	loc := p.File
	if p.Line > 0 {
		loc = fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	if p.Key == "" {
		return loc + ": " + p.Msg
	}
	return loc + ": " + p.Key + ": " + p.Msg
}

// ConfigError lists every problem found in a driver config file.
type ConfigError struct{ Problems []ConfigProblem }

func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return "driver config: " + strings.Join(lines, "; ")
}

// LoadConfig reads and checks a driver config file strictly: an unknown key,
// a value of the wrong type or out of range is a *ConfigError naming
// file:line.
func LoadConfig(file string) (*Config, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("driver config %s: %w", file, err)
	}
	src, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("read driver config %s: %w", abs, err)
	}
	return ParseConfig(abs, string(src))
}

// ParseConfig is LoadConfig on a file's content.
func ParseConfig(file, src string) (*Config, error) {
	var raw rawConfig
	md, err := toml.Decode(src, &raw)
	if err != nil {
		return nil, decodeError(file, err)
	}
	var probs []ConfigProblem
	if undec := md.Undecoded(); len(undec) > 0 {
		lines := keyLines(src)
		for _, k := range undec {
			probs = append(probs, ConfigProblem{File: file, Line: lines.find(k.String()),
				Key: k.String(), Msg: "unknown key" + suggest(k)})
		}
	}
	if raw.Root.V == "" {
		probs = append(probs, ConfigProblem{File: file, Key: "root", Msg: "missing: stint's root directory, e.g. /var/lib/stint"})
	}
	if len(probs) > 0 {
		return nil, &ConfigError{Problems: probs}
	}
	return raw.config(file), nil
}

func decodeError(file string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		key := pe.LastKey
		return &ConfigError{Problems: []ConfigProblem{{File: file, Line: pe.Position.Line, Key: key, Msg: pe.Message}}}
	}
	// Every leaf is a tomlValue, so a wrong type is a ParseError above;
	// anything else is BurntSushi's own.
	return &ConfigError{Problems: []ConfigProblem{{File: file, Msg: err.Error()}}}
}

func (r rawConfig) config(file string) *Config {
	c := &Config{
		File:          file,
		Root:          r.Root.V,
		DefaultImage:  r.DefaultImage.V,
		DefaultRemote: r.DefaultRemote.V,
		Shell:         r.Shell.V,
		BuildsDir:     or(r.BuildsDir.V, "/builds"),
		CacheDir:      or(r.CacheDir.V, "/cache"),
		Profile: Profile{
			Limits:  spec.Limits{Memory: r.Profile.Limits.Memory.V, CPUs: r.Profile.Limits.CPUs.V, Pids: r.Profile.Limits.Pids.V},
			Network: or(r.Profile.Network.V, "none"),
			Env:     map[string]string{},
		},
		Cache: CachePolicy{Scope: or(r.Cache.Scope.V, CacheProject), Commit: or(r.Cache.Commit.V, CommitOnSuccess)},
	}
	if r.AllowedImages != nil {
		c.AllowedImages = []string{}
		for _, p := range *r.AllowedImages {
			c.AllowedImages = append(c.AllowedImages, p.V)
		}
	}
	for k, v := range r.Profile.Env {
		c.Profile.Env[k] = v.V
	}
	return c
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// suggest names the key that an unknown one probably meant.
func suggest(k toml.Key) string {
	known := map[string][]string{
		"":               {"root", "default_image", "allowed_images", "default_remote", "shell", "builds_dir", "cache_dir", "profile", "cache"},
		"profile":        {"limits", "network", "env"},
		"profile.limits": {"memory", "cpus", "pids"},
		"cache":          {"scope", "commit"},
	}
	parent := strings.Join(k[:len(k)-1], ".")
	last := k[len(k)-1]
	best, bestD := "", 3
	for _, cand := range known[parent] {
		if d := editDistance(last, cand); d < bestD {
			best, bestD = cand, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// ImageAllowed reports whether ref may run: always for the default image,
// otherwise when AllowedImages is nil or one of its patterns matches ref.
func (c *Config) ImageAllowed(ref string) bool {
	if c.AllowedImages == nil || ref == c.DefaultImage && ref != "" {
		return true
	}
	for _, p := range c.AllowedImages {
		if ok, _ := path.Match(p, ref); ok {
			return true
		}
	}
	return false
}
