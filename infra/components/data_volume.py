"""DataVolume: the persistent volume claim a service keeps its data on."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from infra.components.identity import AppIdentity, object_meta
from infra.settings import Storage

VOLUME_NAME = "data"


@dataclass(frozen=True)
class DataVolumeArgs:
    namespace: pulumi.Input[str]
    identity: AppIdentity
    storage: Storage = field(default_factory=Storage)


def claim_spec(storage: Storage) -> k8s.core.v1.PersistentVolumeClaimSpecArgs:
    return k8s.core.v1.PersistentVolumeClaimSpecArgs(
        access_modes=[storage.access_mode],
        storage_class_name=storage.storage_class,
        resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": storage.size}),
    )


class DataVolume(pulumi.ComponentResource):
    """A PersistentVolumeClaim `<name>-data`, exposed as `volume` for a pod to mount.

    Invariants: with `storage.protect` the engine refuses to delete or replace the claim — a destroy, a rename
    or a changed immutable field stops with an error instead of deleting the data — until the user runs
    `pulumi state unprotect` on purpose. `single_pod` tells a workload that the volume admits one pod at a time
    (ReadWriteOncePod), so it must never run two at once.
    """

    claim_name: pulumi.Output[str]
    volume: k8s.core.v1.VolumeArgs
    single_pod: bool

    def __init__(self, name: str, args: DataVolumeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("goapp:storage:DataVolume", name, None, opts)
        claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-data",
            metadata=object_meta(args.identity, f"{name}-data", args.namespace),
            spec=claim_spec(args.storage),
            opts=pulumi.ResourceOptions(parent=self, protect=args.storage.protect),
        )
        self.claim_name = claim.metadata.apply(lambda m: str(m.name))
        self.volume = k8s.core.v1.VolumeArgs(
            name=VOLUME_NAME,
            persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(claim_name=self.claim_name),
        )
        self.single_pod = args.storage.access_mode == "ReadWriteOncePod"
        self.register_outputs({"claimName": self.claim_name})
