"""The deletion audit (spec.audit): one JSON line per deleted (dry run: planned) file, rotated by size,
outside the cleaned tree, and fail closed: no record, no (more) deletions."""

from __future__ import annotations

import json
import logging
import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sweep_helpers import Tree, effective_policy, run_spec
from tempsweep.engine import CleanupContext, RunRequest, run_cleanup
from tempsweep.engine.ports import AuditEntry, AuditError
from tempsweep.models import EffectivePolicy, RunPhase, RunStatus
from tempsweep.storage import VolumeStorage
from tempsweep.storage.audit import AUDIT_LOGGER, AuditLabels, open_audit
from tempsweep.storage.memory import MemoryStorage

LABELS = AuditLabels(namespace="team-a", policy="test-policy", run="nightly", run_type="Orphaned")


def _run(policy: EffectivePolicy, tree: Tree, now: datetime, *, dry_run: bool = False) -> RunStatus:
    audit = open_audit(policy.backend, LABELS)
    context = CleanupContext(policy=policy, storage=VolumeStorage(str(tree.root)), now=now, audit=audit)
    return run_cleanup(context, RunRequest.from_spec(run_spec("Orphaned"), dry_run=dry_run))


def _lines(directory: Path) -> list[dict[str, object]]:
    return [json.loads(line) for path in sorted(directory.iterdir()) for line in path.read_text().splitlines()]


@pytest.fixture
def audit_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "audit"
    directory.mkdir()
    return directory


def test_every_deleted_file_gets_a_line_with_what_a_person_asks(
    tree: Tree, audit_dir: Path, now: datetime
) -> None:
    old = tree.file("renders/stale.tmp", age_hours=30, size=123)
    mtime = datetime.fromtimestamp(old.stat().st_mtime, UTC).replace(microsecond=0)
    tree.file("young.tmp", age_hours=1)
    policy = effective_policy(tree.root, orphans={"maxAgeHours": 24}, audit={"directory": str(audit_dir)})

    status = _run(policy, tree, now)

    assert status.phase is RunPhase.SUCCEEDED and status.files_deleted == 1
    assert [p.name for p in audit_dir.iterdir()] == ["team-a_test-policy.audit.jsonl"]
    (line,) = _lines(audit_dir)
    assert line["action"] == "deleted" and line["dryRun"] is False
    assert line["path"] == "renders/stale.tmp"  # relative to the root
    assert (line["reason"], line["size"]) == ("Expired", 123)  # an age-only policy: expired by age
    assert line["mtime"] == mtime.isoformat().replace("+00:00", "Z")
    assert (line["run"], line["type"], line["policy"], line["namespace"]) == (
        "nightly", "Orphaned", "test-policy", "team-a"
    )


def test_a_dry_run_records_the_plan_and_deletes_nothing(tree: Tree, audit_dir: Path, now: datetime) -> None:
    for index in range(3):
        tree.file(f"stale-{index}.tmp", age_hours=30)
    policy = effective_policy(tree.root, orphans={"maxAgeHours": 24}, audit={"directory": str(audit_dir)})

    status = _run(policy, tree, now, dry_run=True)

    assert status.would_delete_count == 3 and len(tree.files()) == 3
    lines = _lines(audit_dir)
    assert {line["path"] for line in lines} == {f"stale-{index}.tmp" for index in range(3)}
    assert {(line["action"], line["dryRun"]) for line in lines} == {("planned", True)}


def test_a_plan_the_guard_stopped_is_not_audited(tree: Tree, audit_dir: Path, now: datetime) -> None:
    for index in range(3):
        tree.file(f"stale-{index}.tmp", age_hours=30)
    policy = effective_policy(
        tree.root, orphans={"maxAgeHours": 24}, limits={"maxDeletePercent": 10}, audit={"directory": str(audit_dir)}
    )

    status = _run(policy, tree, now)

    assert status.reason is not None and status.reason.value == "BlastRadiusExceeded"
    assert _lines(audit_dir) == []  # nothing was deleted, nothing was a dry run's plan


def test_the_file_rotates_by_size_and_keeps_the_backups_asked_for(tree: Tree, audit_dir: Path, now: datetime) -> None:
    for index in range(120):  # about 300 bytes a line: 36 KB of audit
        tree.file(f"stale-{index:03d}.tmp", age_hours=30)
    audit = {"directory": str(audit_dir), "maxBytes": 4096, "backups": 3}
    policy = effective_policy(tree.root, orphans={"maxAgeHours": 24}, audit=audit)

    status = _run(policy, tree, now)

    assert status.files_deleted == 120
    names = sorted(p.name for p in audit_dir.iterdir())
    base = "team-a_test-policy.audit.jsonl"
    assert names == [base, f"{base}.1", f"{base}.2", f"{base}.3"]
    assert all((audit_dir / name).stat().st_size <= 4096 for name in names)
    kept = _lines(audit_dir)
    assert 0 < len(kept) < 120  # the oldest lines went with the oldest backup
    assert len({line["path"] for line in kept}) == len(kept)


def test_a_directory_inside_the_tree_is_refused_by_name(tree: Tree) -> None:
    with pytest.raises(ValueError, match=r"spec\.audit\.directory: .* lies inside the cleaned volume"):
        effective_policy(tree.root, audit={"directory": str(tree.root / "audit")})


def test_a_symlink_into_the_tree_is_refused_before_anything_is_deleted(
    tree: Tree, tmp_path: Path, now: datetime
) -> None:
    tree.file("stale.tmp", age_hours=30)
    (tree.root / "records").mkdir()
    link = tmp_path / "looks-outside"
    link.symlink_to(tree.root / "records")
    policy = effective_policy(tree.root, orphans={"maxAgeHours": 24}, audit={"directory": str(link)})

    status = _run(policy, tree, now)

    assert status.phase is RunPhase.FAILED
    assert status.reason is not None and status.reason.value == "AuditUnavailable"
    assert "inside the cleaned volume" in status.message and "nothing deleted" in status.message
    assert tree.files() == {"stale.tmp"}


def test_a_missing_directory_deletes_nothing(tree: Tree, tmp_path: Path, now: datetime) -> None:
    tree.file("stale.tmp", age_hours=30)
    policy = effective_policy(tree.root, orphans={"maxAgeHours": 24}, audit={"directory": str(tmp_path / "unmounted")})

    status = _run(policy, tree, now)

    assert status.reason is not None and status.reason.value == "AuditUnavailable"
    assert "does not exist" in status.message
    assert tree.files() == {"stale.tmp"}


@contextmanager
def _no_room_to_grow() -> Iterator[None]:
    """Files of this process cannot grow past 1 byte (the kernel's RLIMIT_FSIZE): the audit file opens
    fine and every line fails, as on a full disk. (A symlink to /dev/full is refused as the audit file.)"""
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of the signal
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_a_write_that_fails_mid_run_stops_the_deletions(tree: Tree, audit_dir: Path, now: datetime) -> None:
    for index in range(20):
        tree.file(f"stale-{index:02d}.tmp", age_hours=30)
    policy = effective_policy(
        tree.root, orphans={"maxAgeHours": 24}, limits={"batchSize": 2, "parallelism": 1},
        audit={"directory": str(audit_dir)},
    )

    with _no_room_to_grow():
        status = _run(policy, tree, now)

    assert status.phase is RunPhase.FAILED
    assert status.reason is not None and status.reason.value == "AuditUnavailable"
    assert "File too large" in status.message and "deletions stopped" in status.message
    assert status.files_deleted == 2  # the batch under way when the first line failed, no further batch
    assert len(tree.files()) == 18
    assert sum("its audit line could not be written" in error for error in status.errors) == 2


def test_without_a_directory_the_lines_go_to_the_log_stream(
    tree: Tree, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    tree.file("stale.tmp", age_hours=30)
    policy = effective_policy(tree.root, orphans={"maxAgeHours": 24}, audit={})

    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER):
        status = _run(policy, tree, now)

    assert status.files_deleted == 1
    (record,) = [r for r in caplog.records if r.name == AUDIT_LOGGER]
    line = json.loads(record.getMessage())
    assert (line["path"], line["action"], line["run"]) == ("stale.tmp", "deleted", "nightly")


class _FailsAfter:
    """An audit sink whose disk fills up after ``room`` lines (an in-memory stand-in for the property)."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.lines: list[str] = []

    def open(self) -> None:
        return None

    def record(self, entry: AuditEntry) -> None:
        if len(self.lines) >= self.room:
            raise AuditError("No space left on device")
        self.lines.append(entry.path)

    def close(self) -> None:
        return None


@settings(max_examples=60, deadline=None)
@given(
    files=st.integers(min_value=1, max_value=60),
    room=st.integers(min_value=0, max_value=70),
    batch=st.integers(min_value=1, max_value=8),
    parallelism=st.integers(min_value=1, max_value=4),
    dry_run=st.booleans(),
)
def test_property_no_deletion_without_a_line_beyond_the_round_under_way(
    files: int, room: int, batch: int, parallelism: int, dry_run: bool
) -> None:
    now = datetime.now(UTC)
    storage = MemoryStorage()
    for index in range(files):
        storage.put(f"f{index:03d}.tmp", 10, now.timestamp() - 30 * 3600)
    policy = effective_policy(
        "/data/tmp", storage={"volume": {"capacity": "1Mi"}}, orphans={"maxAgeHours": 24},
        limits={"batchSize": batch, "parallelism": parallelism},
    )
    sink = _FailsAfter(room)

    status = run_cleanup(
        CleanupContext(policy=policy, storage=storage, now=now, audit=sink),
        RunRequest.from_spec(run_spec("Orphaned"), dry_run=dry_run),
    )

    deleted = files - len(storage.paths())
    if dry_run:
        assert deleted == 0
    unrecorded = deleted - len([p for p in sink.lines if p not in storage.paths()])
    assert unrecorded <= batch * parallelism  # only the round that was already deleting when the line failed
    if room >= files:
        assert status.phase is RunPhase.SUCCEEDED and unrecorded == 0
    else:
        assert status.phase is RunPhase.FAILED
        assert status.reason is not None and status.reason.value == "AuditUnavailable"
        assert status.error_count >= unrecorded  # every deleted file without a line is named
