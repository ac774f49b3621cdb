package gitlab

import (
	"context"
	"errors"
	"testing"
)

func TestChooseImage(t *testing.T) {
	cases := []struct {
		name      string
		cfg       Config
		requested string
		want      string
		err       error
	}{
		{"default image", Config{DefaultImage: "busybox"}, "", "busybox", nil},
		{"no image at all", Config{}, "", "", ErrImageUnknown},
		{"local alias", Config{}, "debian", "debian", nil},
		{"fingerprint", Config{}, "0123456789ab", "0123456789ab", nil},
		{"configured remote as is", Config{}, "images:alpine/3.20", "images:alpine/3.20", nil},
		{"remote not configured is a name", Config{DefaultRemote: "hub"}, "quay:foo", "hub:quay:foo", nil},
		{"default remote", Config{DefaultRemote: "hub"}, "alpine:3.20", "hub:alpine:3.20", nil},
		{"local wins over default remote", Config{DefaultRemote: "hub"}, "busybox", "busybox", nil},
		{"unknown without default remote", Config{}, "alpine:3.20", "", ErrImageUnknown},
		{"default remote not configured", Config{DefaultRemote: "nope"}, "alpine", "", ErrImageUnknown},
		{"allowed pattern", Config{DefaultRemote: "hub", AllowedImages: []string{"hub:alpine:*"}}, "alpine:3.20", "hub:alpine:3.20", nil},
		{"pattern matches the chosen reference, not the text",
			Config{DefaultRemote: "hub", AllowedImages: []string{"alpine:*"}}, "alpine:3.20", "", ErrImageNotAllowed},
		{"disallowed remote", Config{AllowedImages: []string{"busybox"}}, "images:alpine/3.20", "", ErrImageNotAllowed},
		{"default image always allowed", Config{DefaultImage: "debian", AllowedImages: []string{}}, "", "debian", nil},
		{"default image named by the job", Config{DefaultImage: "debian", AllowedImages: []string{}}, "debian", "debian", nil},
		{"spaces trimmed", Config{}, " busybox ", "busybox", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.File = "/etc/stint/gitlab.toml"
			got, err := ChooseImage(context.Background(), &cfg, newFake(), c.requested)
			if c.err != nil {
				var ie *ImageError
				if !errors.Is(err, c.err) || !errors.As(err, &ie) {
					t.Fatalf("err = %v, want an *ImageError wrapping %v", err, c.err)
				}
				if code := (Call{BuildFailureCode: 1, SystemFailureCode: 2}).ExitCode(err); code != 2 {
					t.Errorf("exit code %d, want the system failure code", code)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("ChooseImage(%q) = %q, %v; want %q", c.requested, got, err, c.want)
			}
		})
	}
}
