package gitlab

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/stintdev/stint/spec"
)

// The file's shape. Every leaf is a type with its own UnmarshalTOML, so that
// a wrong type or a bad value is a toml.ParseError carrying the line, never
// an untyped error from the decoder.
type rawConfig struct {
	Root          tAbsPath    `toml:"root"`
	DefaultImage  tString     `toml:"default_image"`
	AllowedImages *[]tPattern `toml:"allowed_images"`
	DefaultRemote tString     `toml:"default_remote"`
	Shell         tShell      `toml:"shell"`
	BuildsDir     tAbsPath    `toml:"builds_dir"`
	CacheDir      tAbsPath    `toml:"cache_dir"`
	Profile       struct {
		Limits struct {
			Memory tSize  `toml:"memory"`
			CPUs   tCPUs  `toml:"cpus"`
			Pids   tCount `toml:"pids"`
		} `toml:"limits"`
		Network tNetwork           `toml:"network"`
		Env     map[string]tString `toml:"env"`
	} `toml:"profile"`
	Cache struct {
		Scope  tScope  `toml:"scope"`
		Commit tCommit `toml:"commit"`
	} `toml:"cache"`
}

func wantString(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("expected a string, got %s", tomlType(v))
	}
	return s, nil
}

func tomlType(v any) string {
	switch v.(type) {
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

func oneOf(v any, values ...string) (string, error) {
	s, err := wantString(v)
	if err != nil {
		return "", err
	}
	for _, ok := range values {
		if s == ok {
			return s, nil
		}
	}
	return "", fmt.Errorf("%q is not one of %s", s, strings.Join(values, ", "))
}

type tString struct{ V string }

func (t *tString) UnmarshalTOML(v any) (err error) { t.V, err = wantString(v); return err }

type tAbsPath struct{ V string }

func (t *tAbsPath) UnmarshalTOML(v any) error {
	s, err := wantString(v)
	if err != nil {
		return err
	}
	if !path.IsAbs(s) {
		return fmt.Errorf("%q is not an absolute path", s)
	}
	t.V = path.Clean(s)
	return nil
}

type tPattern struct{ V string }

func (t *tPattern) UnmarshalTOML(v any) error {
	s, err := wantString(v)
	if err != nil {
		return err
	}
	if _, err := path.Match(s, ""); errors.Is(err, path.ErrBadPattern) || s == "" {
		return fmt.Errorf("bad image pattern %q (patterns are path.Match globs: *, ?, [a-z])", s)
	}
	t.V = s
	return nil
}

type tShell struct{ V string }

func (t *tShell) UnmarshalTOML(v any) (err error) { t.V, err = oneOf(v, "sh", "bash"); return err }

type tNetwork struct{ V string }

func (t *tNetwork) UnmarshalTOML(v any) (err error) {
	t.V, err = oneOf(v, "none", "host", "bridge")
	return err
}

type tScope struct{ V string }

func (t *tScope) UnmarshalTOML(v any) (err error) {
	t.V, err = oneOf(v, CacheProject, CacheRunner, CacheNone)
	return err
}

type tCommit struct{ V string }

func (t *tCommit) UnmarshalTOML(v any) (err error) {
	t.V, err = oneOf(v, CommitOnSuccess, CommitAlways, CommitNever)
	return err
}

type tSize struct{ V int64 }

func (t *tSize) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 1 {
			return fmt.Errorf("size %d must be positive", x)
		}
		t.V = x
		return nil
	case string:
		n, err := spec.ParseSize(x)
		if err != nil {
			return err
		}
		t.V = n
		return nil
	}
	return fmt.Errorf(`expected a size like "512MiB", got %s`, tomlType(v))
}

type tCPUs struct{ V float64 }

func (t *tCPUs) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		t.V = float64(x)
	case float64:
		t.V = x
	default:
		return fmt.Errorf("expected a number of CPUs, got %s", tomlType(v))
	}
	if t.V <= 0 {
		return fmt.Errorf("cpus %s must be positive", strconv.FormatFloat(t.V, 'g', -1, 64))
	}
	return nil
}

type tCount struct{ V int64 }

func (t *tCount) UnmarshalTOML(v any) error {
	x, ok := v.(int64)
	if !ok || x < 1 {
		return fmt.Errorf("expected a positive integer, got %v", v)
	}
	t.V = x
	return nil
}

// keyLines maps the dotted key paths of a TOML file that parsed to the line
// where each is written. It knows tables, dotted and quoted keys; a key
// inside an inline table is found through its parent.
type keyLineMap map[string]int

func keyLines(src string) keyLineMap {
	m := keyLineMap{}
	table := ""
	for i, line := range strings.Split(src, "\n") {
		t := strings.TrimSpace(line)
		switch {
		case t == "" || strings.HasPrefix(t, "#"):
		case strings.HasPrefix(t, "["):
			h := strings.Trim(strings.SplitN(t, "]", 2)[0], "[] \t")
			table = normKey(h)
			m.set(table, i+1)
		default:
			k, _, ok := strings.Cut(t, "=")
			if !ok {
				continue
			}
			full := normKey(k)
			if table != "" {
				full = table + "." + full
			}
			m.set(full, i+1)
		}
	}
	return m
}

func (m keyLineMap) set(k string, line int) {
	if _, ok := m[k]; !ok {
		m[k] = line
	}
}

// find returns the line of key, or of its nearest written parent.
func (m keyLineMap) find(key string) int {
	for k := key; k != ""; {
		if l, ok := m[k]; ok {
			return l
		}
		i := strings.LastIndex(k, ".")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

func normKey(k string) string {
	parts := strings.Split(k, ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return strings.Join(parts, ".")
}
