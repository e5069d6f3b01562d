"""Property: a free-space floor the storage can never satisfy never causes a deletion.

For random storage sizes (a capacity, or a filesystem of that size), random floors (inherited from the
setting or written in the policy) and random trees of orphans old enough for any emergency to delete:

* an explicit floor not below the size is refused: at validation with a capacity, and by the run itself
  on a filesystem (Failed, nothing deleted);
* an inherited floor not below the size is not applied: the run deletes only when usage itself is at
  the emergency threshold;
* a floor below the size applies: no emergency while usage is below the threshold with that much free.

The engine runs on the in-memory storage shipped beside the real ones.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sweep_helpers import effective_policy, run_spec
from tempsweep.engine import CleanupContext, RunRequest, run_cleanup
from tempsweep.models import RunPhase
from tempsweep.storage import MemoryStorage

NOW = datetime(2026, 1, 1, tzinfo=UTC)
EMERGENCY = 95.0
GiB = 2**30


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(min_value=1_000, max_value=4 * GiB),
    capacity_mode=st.booleans(),
    inherited=st.booleans(),
    floor_fraction=st.sampled_from([0.0, 0.01, 0.5, 0.999, 1.0, 1.001, 2.0, 1000.0]),
    fill=st.lists(st.floats(min_value=0.0, max_value=0.2), min_size=1, max_size=8),
    kind=st.sampled_from(["Emergency", "Scheduled"]),
)
def test_property_an_unsatisfiable_floor_never_deletes(
    size: int,
    capacity_mode: bool,
    inherited: bool,
    floor_fraction: float,
    fill: list[float],
    kind: str,
) -> None:
    floor = int(size * floor_fraction)
    if inherited:
        env = {"TEMP_STORAGE_CLEANUP_MIN_FREE_SPACE_GB": repr(floor / GiB)}
        floor = int(float(env["TEMP_STORAGE_CLEANUP_MIN_FREE_SPACE_GB"]) * GiB)  # what the setting yields
        # minFreeSpace None: the key removed from the helper's base spec, so the setting is inherited
        thresholds: dict[str, object] = {"emergencyPercent": EMERGENCY, "warningPercent": 85, "minFreeSpace": None}
    else:
        env = {}
        thresholds = {"emergencyPercent": EMERGENCY, "warningPercent": 85, "minFreeSpace": floor}
    storage_spec = {"volume": {"capacity": size}} if capacity_mode else {}
    overrides = {"storage": storage_spec, "thresholds": thresholds, "orphans": {"emergencyMaxAgeHours": 1}}
    unsatisfiable = floor >= size

    if capacity_mode and unsatisfiable and not inherited:
        with pytest.raises(ValueError, match=r"spec\.thresholds\.minFreeSpace .* must be smaller than the capacity"):
            effective_policy("/srv/tmp", env=env, **overrides)
        return

    policy = effective_policy("/srv/tmp", env=env, **overrides)
    storage = MemoryStorage(filesystem_bytes=None if capacity_mode else size)
    sizes = [int(size * share) for share in fill]
    while sum(sizes) > size:  # a filesystem holds at most its size
        sizes.pop()
    for index, file_size in enumerate(sizes):
        # old enough for an emergency (emergencyMaxAgeHours 1), too young for Scheduled's orphan pass (24 h)
        storage.put(f"old{index}.tmp", file_size, NOW.timestamp() - 5 * 3600)
    used = sum(sizes)
    before = storage.paths()

    status = run_cleanup(CleanupContext(policy=policy, storage=storage, now=NOW), RunRequest.from_spec(run_spec(kind)))

    if unsatisfiable and not inherited:  # a filesystem: only known at run time, refused there
        assert status.phase is RunPhase.FAILED
        assert "spec.thresholds.minFreeSpace" in status.message
        assert storage.paths() == before
        return
    percent_low = 100.0 * used / size < EMERGENCY
    if unsatisfiable:  # inherited, not applied
        assert status.effective_min_free_space_bytes == 0
        if percent_low:
            assert storage.paths() == before, status.message
    elif percent_low and size - used >= floor:
        assert storage.paths() == before, status.message
        assert status.effective_min_free_space_bytes == floor
