"""Gardener kinds as the simulated garden serves them."""

from __future__ import annotations

from landscape.kubeapi.kinds import Kind

CORE = "core.gardener.cloud"
SECURITY = "security.gardener.cloud"
FINALIZER = "gardener"
OPERATION = "gardener.cloud/operation"
CONFIRM_DELETION = "confirmation.gardener.cloud/deletion"
CONDITION_TYPES = (
    "APIServerAvailable",
    "ControlPlaneHealthy",
    "ObservabilityComponentsHealthy",
    "EveryNodeReady",
    "SystemComponentsHealthy",
)


def kinds() -> list[Kind]:
    return [
        Kind(
            CORE,
            "v1beta1",
            "Shoot",
            "shoots",
            short_names=("shoot",),
            merge_keys={
                "spec.provider.workers": "name",
                "status.conditions": "type",
                "spec.extensions": "type",
                "status.constraints": "type",
            },
        ),
        Kind(
            CORE,
            "v1beta1",
            "CloudProfile",
            "cloudprofiles",
            namespaced=False,
            short_names=("cprofile",),
            merge_keys={
                "spec.kubernetes.versions": "version",
                "spec.machineImages": "name",
                "spec.machineTypes": "name",
                "spec.regions": "name",
            },
        ),
        Kind(CORE, "v1beta1", "SecretBinding", "secretbindings", status_subresource=False, merge_keys={}),
        Kind(CORE, "v1beta1", "Project", "projects", namespaced=False, merge_keys={}),
        Kind(
            SECURITY,
            "v1alpha1",
            "CredentialsBinding",
            "credentialsbindings",
            status_subresource=False,
            merge_keys={},
        ),
    ]
