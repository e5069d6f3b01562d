"""Storage providers: where the files are. Each implements ``tempsweep.engine.ports.StorageProvider``."""

from tempsweep.storage.memory import MemoryStorage
from tempsweep.storage.volume import VolumeStorage

__all__ = ["MemoryStorage", "VolumeStorage"]
