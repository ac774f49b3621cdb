package images

import (
	"archive/tar"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const templateSecret = "HOST-SECRET-templates-must-never-read-this"

// A hostile image's templates cannot read host files: every pongo2 tag that
// loads a file (include, ssi, extends, import; "from" is not even a tag)
// fails the render, and no host content reaches the rootfs.
func TestRenderTemplatesHostileTags(t *testing.T) {
	host := t.TempDir()
	secret := filepath.Join(host, "secret")
	require.NoError(t, os.WriteFile(secret, []byte(templateSecret+"\n"), 0o644))
	// A macro file for import, a parent for extends: both on the host.
	require.NoError(t, os.WriteFile(filepath.Join(host, "macros.tpl"), []byte(`{% macro m() export %}`+templateSecret+`{% endmacro %}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(host, "parent.tpl"), []byte(templateSecret+`{% block b %}{% endblock %}`), 0o644))
	// Relative to the process's directory, as pongo2's default loader reads it.
	wd, err := os.Getwd()
	require.NoError(t, err)
	rel, err := filepath.Rel(wd, secret)
	require.NoError(t, err)

	cases := map[string]string{
		"include absolute":     `{% include "` + secret + `" %}`,
		"include relative":     `{% include "` + rel + `" %}`,
		"include if_exists":    `{% include "` + secret + `" if_exists %}`,
		"ssi":                  `{% ssi "` + secret + `" %}`,
		"ssi parsed":           `{% ssi "` + secret + `" parsed %}`,
		"extends":              `{% extends "` + filepath.Join(host, "parent.tpl") + `" %}{% block b %}x{% endblock %}`,
		"import":               `{% import "` + filepath.Join(host, "macros.tpl") + `" m %}{{ m() }}`,
		"from":                 `{% from "` + filepath.Join(host, "macros.tpl") + `" import m %}{{ m() }}`,
		"include in a block":   `{% if true %}{% include "` + secret + `" %}{% endif %}`,
		"include by variable":  `{% with f="` + secret + `" %}{% include f %}{% endwith %}`,
		"include of a sibling": `{% include "ok.tpl" %}`,
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			meta := "architecture: x86_64\ncreation_date: 1622548800\ntemplates:\n  /etc/hostname:\n    when: [create]\n    template: h.tpl\n"
			ents := []ent{
				{name: "metadata.yaml", body: meta},
				{name: "templates/", typ: tar.TypeDir, mode: 0o755},
				{name: "templates/h.tpl", body: src},
				{name: "templates/ok.tpl", body: "fine\n"},
				{name: "rootfs/", typ: tar.TypeDir, mode: 0o755},
			}
			ents = append(ents, rootfsEnts("rootfs/")...)
			s := newStore(t)
			img, err := s.Import(context.Background(), []string{writeFile(t, t.TempDir(), "i", mkTar(t, ents))}, ImportOptions{})
			require.NoError(t, err)
			rootfs := t.TempDir()
			_, err = s.Unpack(context.Background(), img, rootfs, UnpackOptions{SkipDevices: true})
			require.NoError(t, err)

			err = RenderTemplates(img, rootfs, TriggerCreate, TemplateContext{Name: "c1"})
			require.Error(t, err, "a template that loads a file must fail")
			assert.Contains(t, err.Error(), "h.tpl", "the error names the template")
			assert.NotContains(t, err.Error(), templateSecret)
			b, rerr := os.ReadFile(filepath.Join(rootfs, "etc/hostname"))
			require.NoError(t, rerr)
			assert.Equal(t, "image\n", string(b), "the file is left as the image had it")
		})
	}
	// Nothing was written on the host either.
	assert.Equal(t, []string{"macros.tpl", "parent.tpl", "secret"}, listDir(t, host))
	b, err := os.ReadFile(secret)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(b), templateSecret))
}
