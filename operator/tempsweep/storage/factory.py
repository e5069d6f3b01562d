"""Build the storage provider a policy names."""

from __future__ import annotations

from tempsweep.engine.ports import StorageError, StorageProvider
from tempsweep.models.effective import EffectivePolicy


def open_storage(policy: EffectivePolicy, *, azure_connection_string: str | None = None) -> StorageProvider:
    """The provider for ``spec.storage``; Azure is imported only when a policy uses it."""
    if policy.volume_path is not None:
        from tempsweep.storage.volume import VolumeStorage

        return VolumeStorage(policy.volume_path)
    blob = policy.spec.storage.azure_blob
    if blob is None:  # pragma: no cover - the spec guarantees one backend
        raise StorageError("spec.storage: no backend configured")
    try:
        from tempsweep.storage.azure_blob import AzureBlobStorage
    except ImportError as exc:  # pragma: no cover - until the Azure backend lands
        raise StorageError(f"spec.storage.azureBlob: not supported by this build ({exc})") from None
    return AzureBlobStorage.from_spec(blob, connection_string=azure_connection_string)
