"""One ConfigMap through a render-mode Kubernetes provider: the least a Pulumi Python program can do with
the providers goapp uses, so the engine benchmark can tell the engine's fixed cost from goapp's own."""

import os

import pulumi
import pulumi_kubernetes as k8s

render_dir = os.environ.get("BENCH_RENDER_DIR", "")
if not render_dir:
    raise pulumi.RunError("BENCH_RENDER_DIR is not set: the floor program only runs in render mode")

# Same provider arguments as goapp's program in render mode (infra/program.py).
provider = k8s.Provider(
    "kubernetes", render_yaml_to_directory=render_dir, enable_config_map_mutable=True, enable_secret_mutable=True
)
k8s.core.v1.ConfigMap(
    "floor",
    metadata=k8s.meta.v1.ObjectMetaArgs(name="floor", namespace="default"),
    data={"purpose": "engine benchmark floor"},
    opts=pulumi.ResourceOptions(provider=provider),
)
