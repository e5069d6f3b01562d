"""Build the storage provider a policy names."""

from __future__ import annotations

from tempsweep.engine.ports import StorageError, StorageProvider
from tempsweep.models.effective import EffectivePolicy


def open_storage(policy: EffectivePolicy, *, azure_connection_string: str | None = None) -> StorageProvider:
    """The provider for ``spec.storage``; Azure is imported only when a policy uses it.

    ``azure_connection_string`` is the value of the policy's Secret, read by the operator; without it
    the policy's own (``connectionString``, or offline ``TEMP_STORAGE_CLEANUP_AZURE_CONNECTION_STRING``)
    is used.
    """
    if policy.volume_path is not None:
        from tempsweep.storage.volume import VolumeStorage

        return VolumeStorage(policy.volume_path)
    blob = policy.spec.storage.azure_blob
    if blob is None:  # pragma: no cover - the spec guarantees one backend
        raise StorageError("spec.storage: no backend configured")
    from tempsweep.storage.azure_blob import AzureBlobStorage

    return AzureBlobStorage.from_spec(blob, connection_string=azure_connection_string or policy.azure_connection_string)
