package gitlab

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseServices: each testdata/services/X.json is a value of
// CUSTOM_ENV_CI_JOB_SERVICES as the runner writes it; X.golden is what the
// driver makes of it, X.err its error.
func TestParseServices(t *testing.T) {
	files, _ := filepath.Glob("testdata/services/*.json")
	for _, f := range files {
		base := strings.TrimSuffix(f, ".json")
		t.Run(filepath.Base(base), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			svcs, err := ParseServices(string(src))
			if _, statErr := os.Stat(base + ".err"); statErr == nil {
				if !errors.Is(err, ErrBadService) {
					t.Fatalf("err = %v, want ErrBadService", err)
				}
				golden(t, base+".err", err.Error()+"\n")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.MarshalIndent(svcs, "", "  ")
			golden(t, base+".golden", string(got)+"\n")
		})
	}
}

func TestDefaultAlias(t *testing.T) {
	for in, want := range map[string]string{
		"postgres":                        "postgres",
		"postgres:15":                     "postgres",
		"tutum/wordpress:latest":          "tutum-wordpress",
		"registry.local:5000/db/pg:15":    "registry.local-5000-db-pg",
		"alpine@sha256:0123456789abcdef0": "alpine",
	} {
		if got := defaultAlias(in); got != want {
			t.Errorf("defaultAlias(%q) = %q, want %q", in, got, want)
		}
	}
}
