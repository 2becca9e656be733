// Command embed-schema writes the versioned schema and the Terraform mapping that the Kubernetes
// provider's main package embeds. The provider module ships only the unversioned sources
// (schema.json, terraform-mapping.json); upstream produces the embedded copies with `go generate`
// in its own tree, which a module download cannot do.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "embed-schema:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("embed-schema", flag.ContinueOnError)
	fs.SetOutput(stderr)
	src := fs.String("src", "", "directory holding the provider's schema.json and terraform-mapping.json")
	out := fs.String("out", "", "directory to write schema-embed.json and terraform-mapping-embed.json into")
	version := fs.String("version", "", "provider version to stamp into the schema (semver, no leading v)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *src == "" || *out == "" || *version == "" {
		return errors.New("-src, -out and -version are all required")
	}
	if _, err := semver.Parse(*version); err != nil {
		return fmt.Errorf("-version %q is not a semantic version such as 4.25.0: %w", *version, err)
	}

	var spec schema.PackageSpec
	if err := readJSON(filepath.Join(*src, "schema.json"), &spec); err != nil {
		return err
	}
	spec.Version = *version
	if err := writeJSON(filepath.Join(*out, "schema-embed.json"), spec); err != nil {
		return err
	}

	var mapping any
	if err := readJSON(filepath.Join(*src, "terraform-mapping.json"), &mapping); err != nil {
		return err
	}
	return writeJSON(filepath.Join(*out, "terraform-mapping-embed.json"), mapping)
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return os.WriteFile(path, data, 0o644)
}
