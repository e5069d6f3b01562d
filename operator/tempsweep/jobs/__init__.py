"""Job sources: where job status is read. Each implements ``tempsweep.engine.ports.JobSource``."""

from tempsweep.jobs.memory import MemoryJobSource

__all__ = ["MemoryJobSource"]
