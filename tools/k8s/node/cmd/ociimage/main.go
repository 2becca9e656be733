// Command ociimage packs one static binary into a single-layer image FROM scratch and writes
// it as an image tarball (for `ctr images import`) or pushes it to a plain-HTTP registry on
// loopback. It exists because no base image can be pulled on this machine and the node must
// not depend on Docker to get its sandbox image.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type options struct {
	binary string
	dest   string
	ref    string
	out    string
	push   bool
	user   string
}

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("ociimage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.binary, "binary", "", "static binary to pack (required)")
	fs.StringVar(&o.dest, "path", "", "absolute path of the binary inside the image; it is also the entrypoint (default /<binary name>)")
	fs.StringVar(&o.ref, "tag", "", "image reference, e.g. 127.0.0.1:5000/hello:1 (required)")
	fs.StringVar(&o.out, "out", "", "write an image tarball to this file")
	fs.BoolVar(&o.push, "push", false, "push to the reference's registry over plain HTTP (loopback registries only)")
	fs.StringVar(&o.user, "user", "65532:65532", "numeric uid:gid the image runs as")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.binary == "" || o.ref == "" {
		return errors.New("-binary and -tag are required")
	}
	if o.out == "" && !o.push {
		return errors.New("nothing to do: give -out FILE and/or -push")
	}
	if o.dest == "" {
		o.dest = "/" + path.Base(o.binary)
	}
	if !path.IsAbs(o.dest) {
		return fmt.Errorf("-path %q must be absolute", o.dest)
	}
	ref, err := name.ParseReference(o.ref)
	if err != nil {
		return fmt.Errorf("-tag %q: %w", o.ref, err)
	}
	img, err := buildImage(o)
	if err != nil {
		return err
	}
	if o.out != "" {
		if err := tarball.WriteToFile(o.out, ref, img); err != nil {
			return fmt.Errorf("write %s: %w", o.out, err)
		}
	}
	if o.push {
		host := ref.Context().RegistryStr()
		if !strings.HasPrefix(host, "127.") && !strings.HasPrefix(host, "localhost") {
			return fmt.Errorf("-push only talks to loopback registries, not %q", host)
		}
		insecure, err := name.ParseReference(o.ref, name.Insecure)
		if err != nil {
			return err
		}
		if err := remote.Write(insecure, img); err != nil {
			return fmt.Errorf("push %s: %w", o.ref, err)
		}
	}
	return nil
}

func buildImage(o options) (v1.Image, error) {
	data, err := os.ReadFile(o.binary)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Name: strings.TrimPrefix(o.dest, "/"), Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Entrypoint = []string{o.dest}
	cfg.Config.User = o.user
	return mutate.ConfigFile(img, cfg)
}
