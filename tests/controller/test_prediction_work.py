"""The operator's side of the prediction: samples from the statistics, the summary restored from status after
a restart, a new window for a new storage, nothing for a capacity it cannot measure. On a real volume."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sweep_helpers import effective_policy
from tempsweep.controller.prediction_work import sample
from tempsweep.controller.runtime import PolicyRuntime
from tempsweep.controller.state import OperatorState, PolicyMemory
from tempsweep.engine import CleanupContext, compute_stats
from tempsweep.engine.prediction import UsageSample, summarize
from tempsweep.models import RunType, StorageStats, load_settings
from tempsweep.models.prediction import TOO_FEW_SAMPLES
from tempsweep.storage import VolumeStorage

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
MIB = 2**20


def _runtime(root: Path) -> PolicyRuntime:
    policy = effective_policy(root, storage={"volume": {"capacity": "100Mi"}})
    return PolicyRuntime("team-a", "p", 1, policy, VolumeStorage(str(root)), None)


def _stats(runtime: PolicyRuntime) -> StorageStats:
    return compute_stats(CleanupContext(policy=runtime.policy, storage=runtime.storage, now=NOW))


def _body_with_history(used_mib: list[float], every: timedelta) -> dict[str, Any]:
    start = NOW - every * len(used_mib)
    history = summarize([UsageSample(start + every * i, int(mib * MIB)) for i, mib in enumerate(used_mib)])
    assert history is not None
    return {"status": {"prediction": {"history": history.to_wire()}}}


def test_a_restarted_operator_goes_on_from_the_summary_in_status(tmp_path: Path) -> None:
    (tmp_path / "job_1_a.bin").write_bytes(b"x" * 12 * MIB)
    runtime, state, memory = _runtime(tmp_path), OperatorState(load_settings({})), PolicyMemory()
    body = _body_with_history([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], timedelta(minutes=5))  # 12 MiB/h

    prediction = sample(body, runtime, state, memory, _stats(runtime), NOW)

    assert prediction is not None and prediction.samples_used == 12
    assert prediction.fill_rate_bytes_per_hour is not None
    assert abs(prediction.fill_rate_bytes_per_hour - 12 * MIB) < 0.05 * 12 * MIB
    assert prediction.full_at is not None and prediction.full_at > NOW
    assert prediction.history is not None and prediction.history.since == NOW - timedelta(minutes=55)


def test_a_fresh_operator_without_a_summary_says_too_few_samples(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"x" * MIB)
    runtime = _runtime(tmp_path)

    prediction = sample({}, runtime, OperatorState(load_settings({})), PolicyMemory(), _stats(runtime), NOW)

    assert prediction is not None and prediction.full_in == TOO_FEW_SAMPLES and prediction.full_at is None


def test_another_storage_starts_a_new_window(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"x" * 12 * MIB)
    runtime, state, memory = _runtime(tmp_path), OperatorState(load_settings({})), PolicyMemory()
    body = _body_with_history([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], timedelta(minutes=5))
    sample(body, runtime, state, memory, _stats(runtime), NOW)
    assert len(memory.usage) == 12

    bigger = PolicyRuntime(
        "team-a", "p", 2, effective_policy(tmp_path, storage={"volume": {"capacity": "1Gi"}}), runtime.storage, None
    )
    later = NOW + timedelta(minutes=1)
    prediction = sample(body, bigger, state, memory, _stats(bigger), later)

    assert len(memory.usage) == 1  # the samples against 100Mi said nothing about 1Gi
    assert prediction is not None and prediction.full_in == TOO_FEW_SAMPLES


def test_an_unmeasurable_capacity_gives_no_prediction(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    unmeasured = _stats(runtime).model_copy(update={"total_bytes": 0, "free_bytes": 0})
    memory = PolicyMemory()

    assert sample({}, runtime, OperatorState(load_settings({})), memory, unmeasured, NOW) is None
    assert len(memory.usage) == 0


def test_a_prediction_that_lost_its_times_clears_them_in_status() -> None:
    """A merge patch keeps keys it does not name: the prediction is written whole, None as null."""
    from tempsweep.models.prediction import Prediction
    from tempsweep.models.resources import PolicyStatus, status_patch

    patch = status_patch(PolicyStatus(prediction=Prediction(full_in=TOO_FEW_SAMPLES, samples_used=1, confidence=0,
                                                            computed_at=NOW)))

    assert patch["prediction"]["fullAt"] is None and patch["prediction"]["emergencyAt"] is None
    assert patch["prediction"]["fillRateBytesPerHour"] is None and patch["prediction"]["fullIn"] == TOO_FEW_SAMPLES


def test_the_filling_up_event_of_a_dry_run_says_what_it_would_free(tmp_path: Path) -> None:
    from tempsweep.controller.prediction_work import filling_up_message
    from tempsweep.engine import RunRequest, run_cleanup

    (tmp_path / "stale.tmp").write_bytes(b"x" * 2048)
    old = NOW.timestamp() - 48 * 3600
    os.utime(tmp_path / "stale.tmp", (old, old))
    policy = effective_policy(tmp_path, dryRun=True, orphans={"maxAgeHours": 24})
    result = run_cleanup(CleanupContext(policy=policy, storage=VolumeStorage(str(tmp_path)), now=NOW),
                         RunRequest(RunType.PREDICTIVE))

    message = filling_up_message("emergency threshold predicted at X", result)

    assert (tmp_path / "stale.tmp").exists()
    assert message.startswith("storage filling up: emergency threshold predicted at X; Predictive cleanup succeeded")
    assert "dry run, would free 2.0KiB (1 files)" in message
