"""Workload: everything goapp needs in its namespace, with production defaults built in."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra import objects
from infra.settings import Settings


@dataclass(frozen=True)
class WorkloadArgs:
    settings: Settings
    image: pulumi.Input[str]
    """An immutable image reference (repository@sha256:…), the ServiceImage's `ref`."""


class Workload(pulumi.ComponentResource):
    """goapp's namespace and objects: Namespace (restricted Pod Security), ServiceAccount,
    ConfigMap and Secret injected with envFrom, PersistentVolumeClaim at /data, Deployment,
    Service, NetworkPolicy, and, when configured, HorizontalPodAutoscaler and PodDisruptionBudget.

    Invariants: the pod runs as uid 65532 with a read-only root, no capabilities and
    RuntimeDefault seccomp; pods roll exactly when the injected environment changes (checksum
    annotation); under an HPA the Deployment never sets replicas; ReadWriteOncePod storage
    forces the Recreate strategy.
    """

    namespace: pulumi.Output[str]
    service_name: pulumi.Output[str]
    dns_name: pulumi.Output[str]

    def __init__(self, name: str, args: WorkloadArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("goapp:workload:Workload", name, None, opts)
        settings = args.settings
        config = settings.config

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=config.namespace, labels=objects.namespace_labels(settings)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Everything else lives in the namespace, so it must exist first and be deleted last.
        inside = pulumi.ResourceOptions(parent=self, depends_on=[namespace])

        account = k8s.core.v1.ServiceAccount(
            f"{name}-serviceaccount",
            metadata=objects.metadata(settings, objects.APP_NAME),
            automount_service_account_token=False,
            opts=inside,
        )

        env = objects.app_env(settings)
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-env",
            metadata=objects.metadata(settings, f"{objects.APP_NAME}-env"),
            data=env,
            opts=inside,
        )

        secret_values = {key: value.get_secret_value() for key, value in config.secret_env.items()}
        secret = None
        if secret_values:
            secret = k8s.core.v1.Secret(
                f"{name}-secret-env",
                metadata=objects.metadata(settings, f"{objects.APP_NAME}-secret-env"),
                type="Opaque",
                string_data={key: pulumi.Output.secret(value) for key, value in secret_values.items()},
                opts=inside,
            )
        checksum: pulumi.Input[str] = objects.config_checksum(env, secret_values)
        if secret_values:
            checksum = pulumi.Output.secret(checksum)

        claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-data",
            metadata=objects.metadata(settings, f"{objects.APP_NAME}-data"),
            spec=objects.claim_spec(settings),
            opts=inside,
        )

        template = objects.pod_template(
            settings,
            image=args.image,
            checksum=checksum,
            service_account=objects.APP_NAME,
            config_map=f"{objects.APP_NAME}-env",
            secret=f"{objects.APP_NAME}-secret-env" if secret is not None else None,
            claim=f"{objects.APP_NAME}-data",
        )
        children: list[pulumi.Resource] = [account, config_map, claim]
        if secret is not None:
            children.append(secret)
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=objects.metadata(settings, objects.APP_NAME),
            spec=objects.deployment_spec(settings, template),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[namespace, *children],
                # The HPA owns the replica count; never reset it on the next `pulumi up`.
                ignore_changes=["spec.replicas"] if config.autoscaling else None,
            ),
        )

        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=objects.metadata(settings, objects.APP_NAME),
            spec=objects.service_spec(settings),
            opts=inside,
        )

        k8s.networking.v1.NetworkPolicy(
            f"{name}-networkpolicy",
            metadata=objects.metadata(settings, objects.APP_NAME),
            spec=objects.network_policy_spec(settings),
            opts=inside,
        )

        autoscaler = objects.autoscaler_spec(settings, objects.APP_NAME)
        if autoscaler is not None:
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-autoscaler",
                metadata=objects.metadata(settings, objects.APP_NAME),
                spec=autoscaler,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[deployment]),
            )

        budget = objects.disruption_budget_spec(settings)
        if budget is not None:
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-disruptionbudget",
                metadata=objects.metadata(settings, objects.APP_NAME),
                spec=budget,
                opts=inside,
            )

        self.namespace = namespace.metadata.apply(lambda m: str(m.name))
        self.service_name = service.metadata.apply(lambda m: str(m.name))
        self.dns_name = self.service_name.apply(lambda svc: objects.dns_name(settings, svc))
        self.register_outputs(
            {
                "namespace": self.namespace,
                "serviceName": self.service_name,
                "dnsName": self.dns_name,
                "deployment": deployment.metadata.apply(lambda m: str(m.name)),
            }
        )
