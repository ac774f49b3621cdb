package gitlab

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// golden compares got with the file, or rewrites it under -update.
func golden(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("golden %s: %v (run with -update to create it)", file, err)
	}
	if string(want) != got {
		t.Errorf("%s:\n got: %s\nwant: %s", file, got, want)
	}
}

// TestLoadConfig: each testdata/config/X.toml either loads into X.golden
// (the Config as JSON) or fails with X.err.
func TestLoadConfig(t *testing.T) {
	files, _ := filepath.Glob("testdata/config/*.toml")
	if len(files) == 0 {
		t.Fatal("no testdata/config/*.toml")
	}
	for _, f := range files {
		base := strings.TrimSuffix(f, ".toml")
		t.Run(filepath.Base(base), func(t *testing.T) {
			cfg, err := LoadConfig(f)
			if _, statErr := os.Stat(base + ".err"); statErr == nil {
				var ce *ConfigError
				if !errors.As(err, &ce) {
					t.Fatalf("err = %v (%T), want a *ConfigError", err, err)
				}
				// The path is absolute; compare from the file's base name.
				dir, _ := filepath.Abs("testdata/config")
				golden(t, base+".err", strings.ReplaceAll(err.Error(), dir+"/", "")+"\n")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !filepath.IsAbs(cfg.File) {
				t.Errorf("File = %q, not absolute", cfg.File)
			}
			cfg.File = ""
			got, _ := json.MarshalIndent(cfg, "", "  ")
			golden(t, base+".golden", strings.Replace(string(got), "  \"File\": \"\",\n", "", 1)+"\n")
		})
	}
}

func TestImageAllowed(t *testing.T) {
	cases := []struct {
		allowed []string
		ref     string
		want    bool
	}{
		{nil, "anything", true},
		{[]string{}, "busybox", true}, // the default image
		{[]string{}, "debian", false},
		{[]string{"hub:library/*"}, "hub:library/alpine:3.20", true},
		{[]string{"hub:library/*"}, "hub:evil/alpine", false},
		{[]string{"images:alpine/*"}, "images:alpine/3.20/amd64", false}, // * stops at /
		{[]string{"images:alpine/*/*"}, "images:alpine/3.20/amd64", true},
	}
	for _, c := range cases {
		cfg := &Config{DefaultImage: "busybox", AllowedImages: c.allowed}
		if got := cfg.ImageAllowed(c.ref); got != c.want {
			t.Errorf("allowed %q, ImageAllowed(%q) = %v, want %v", c.allowed, c.ref, got, c.want)
		}
	}
}
