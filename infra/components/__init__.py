"""One ComponentResource per concept a service needs on Kubernetes; import them to compose your own program.

Each takes a frozen args type holding only what it needs and exposes outputs the next one takes: the namespace's
`name`, the configuration's `env_from` and `revision`, the data volume's `volume`, the deployment itself as the
target of the Service, the autoscaler, the disruption budget and the network policy. Kubernetes names derive from
each component's name, so two services' components live side by side. `ServiceImage` (the image build) is in
`infra.components.image`, imported on its own because it loads pulumi-docker.
"""

from infra.components.app_config import AppConfig, AppConfigArgs
from infra.components.autoscaler import AUTOSCALED, Autoscaler, AutoscalerArgs, ReplicaRule, fixed_replicas
from infra.components.data_volume import DataVolume, DataVolumeArgs
from infra.components.disruption_budget import DisruptionBudget, DisruptionBudgetArgs
from infra.components.identity import AppIdentity
from infra.components.namespace import RestrictedNamespace, RestrictedNamespaceArgs
from infra.components.network_policy import AppNetworkPolicy, AppNetworkPolicyArgs
from infra.components.service import AppService, AppServiceArgs
from infra.components.web_deployment import WebDeployment, WebDeploymentArgs

__all__ = [
    "AUTOSCALED",
    "AppConfig",
    "AppConfigArgs",
    "AppIdentity",
    "AppNetworkPolicy",
    "AppNetworkPolicyArgs",
    "AppService",
    "AppServiceArgs",
    "Autoscaler",
    "AutoscalerArgs",
    "DataVolume",
    "DataVolumeArgs",
    "DisruptionBudget",
    "DisruptionBudgetArgs",
    "ReplicaRule",
    "RestrictedNamespace",
    "RestrictedNamespaceArgs",
    "WebDeployment",
    "WebDeploymentArgs",
    "fixed_replicas",
]
