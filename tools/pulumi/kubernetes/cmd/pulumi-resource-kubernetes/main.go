// Command pulumi-resource-kubernetes serves the Kubernetes provider, exactly as upstream's main package
// does, with the schema and mapping that embed-schema regenerated for the pinned version. The JSON files
// are build outputs: tools/pulumi/bootstrap.sh builds from a copy of this module in the cache, never in the repo.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
