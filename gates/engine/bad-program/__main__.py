"""A deliberately bad Deployment: privileged, root, no limits, one probe, image by tag.

`python -m gates.run engine-bad` previews this with `--policy-pack policy` and expects the preview to fail with
mandatory violations naming pod-security-restricted and the other policies. Render mode needs no cluster.
"""

import os

import pulumi
import pulumi_kubernetes as k8s

render_dir = os.environ.get("GOAPP_BAD_RENDER_DIR")
if not render_dir:
    raise RuntimeError("GOAPP_BAD_RENDER_DIR must name a scratch directory for the rendered YAML")

provider = k8s.Provider("render", render_yaml_to_directory=render_dir)
labels = {"app.kubernetes.io/name": "bad"}

k8s.apps.v1.Deployment(
    "bad",
    metadata=k8s.meta.v1.ObjectMetaArgs(name="bad", namespace="default"),
    spec=k8s.apps.v1.DeploymentSpecArgs(
        replicas=1,
        selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
        template=k8s.core.v1.PodTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
            spec=k8s.core.v1.PodSpecArgs(
                containers=[
                    k8s.core.v1.ContainerArgs(
                        name="bad",
                        image="127.0.0.1:5000/goapp:latest",
                        security_context=k8s.core.v1.SecurityContextArgs(privileged=True, run_as_user=0),
                        liveness_probe=k8s.core.v1.ProbeArgs(
                            http_get=k8s.core.v1.HTTPGetActionArgs(path="/healthz", port=8080)
                        ),
                    )
                ],
            ),
        ),
    ),
    opts=pulumi.ResourceOptions(provider=provider),
)
