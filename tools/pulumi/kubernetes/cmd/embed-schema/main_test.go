package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeSources(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"schema.json":            `{"name": "kubernetes", "version": "", "resources": {}}`,
		"terraform-mapping.json": `{"provider": {"kubeconfig": "string"}}`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRunStampsVersionAndCompactsMapping(t *testing.T) {
	src, out := writeSources(t), t.TempDir()
	if err := run([]string{"-src", src, "-out", out, "-version", "4.25.0"}, io.Discard); err != nil {
		t.Fatal(err)
	}

	var spec struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	data, err := os.ReadFile(filepath.Join(out, "schema-embed.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	if spec.Name != "kubernetes" || spec.Version != "4.25.0" {
		t.Fatalf("schema-embed.json has name %q version %q, want kubernetes 4.25.0", spec.Name, spec.Version)
	}

	mapping, err := os.ReadFile(filepath.Join(out, "terraform-mapping-embed.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(mapping), `{"provider":{"kubeconfig":"string"}}`; got != want {
		t.Fatalf("terraform-mapping-embed.json = %s, want %s", got, want)
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	src := writeSources(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing version", []string{"-src", src, "-out", t.TempDir()}, "-version are all required"},
		{"leading v", []string{"-src", src, "-out", t.TempDir(), "-version", "v4.25.0"}, "not a semantic version"},
		{"missing schema", []string{"-src", t.TempDir(), "-out", t.TempDir(), "-version", "4.25.0"}, "schema.json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run(%v) error = %v, want one containing %q", tc.args, err, tc.want)
			}
		})
	}
}
