"""Build the storage provider a policy names."""

from __future__ import annotations

from tempsweep.engine.ports import StorageError, StorageProvider
from tempsweep.models.effective import Backend


def open_storage(backend: Backend) -> StorageProvider:
    """The provider for ``spec.storage``; Azure is imported only when a policy uses it.

    The connection string is the backend's resolved one (the operator's Secret value, the policy's own
    ``connectionString``, or offline ``TEMP_STORAGE_CLEANUP_AZURE_CONNECTION_STRING``).
    """
    if backend.volume_path is not None:
        from tempsweep.storage.volume import VolumeStorage

        return VolumeStorage(backend.volume_path)
    blob = backend.azure_blob
    if blob is None:  # pragma: no cover - the spec guarantees one backend
        raise StorageError("spec.storage: no backend configured")
    from tempsweep.storage.azure_blob import AzureBlobStorage

    return AzureBlobStorage.from_spec(blob, connection_string=backend.azure_connection_string)
