"""The deletion audit against what a hostile or careless world puts in its way: file names that are not
UTF-8 or carry line breaks (log injection), times the calendar cannot show, and an audit file swapped for a
symlink or a FIFO between runs. Each line must stay one parseable line naming the exact file; the record
must never be written through a symlink; a run must never hang on its record."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweep_helpers import Tree, effective_policy, run_spec
from tempsweep.engine import CleanupContext, RunRequest, run_cleanup
from tempsweep.engine.ports import AuditEntry, AuditError
from tempsweep.models import EffectivePolicy, RunPhase, RunStatus
from tempsweep.storage import VolumeStorage
from tempsweep.storage.audit import AuditLabels, open_audit
from tempsweep.storage.mounts import device_location

LABELS = AuditLabels(namespace="team-a", policy="test-policy", run="nightly", run_type="Orphaned")
BASE = "team-a_test-policy.audit.jsonl"


def _run(policy: EffectivePolicy, root: Path, now: datetime, *, dry_run: bool = False) -> RunStatus:
    audit = open_audit(policy.backend, LABELS)
    context = CleanupContext(policy=policy, storage=VolumeStorage(str(root)), now=now, audit=audit)
    return run_cleanup(context, RunRequest.from_spec(run_spec("Orphaned"), dry_run=dry_run))


def _raw_lines(path: Path) -> list[bytes]:
    """The file as a log shipper reads it: split at newline bytes only."""
    return [line for line in path.read_bytes().split(b"\n") if line]


@pytest.fixture
def audit_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "audit"
    directory.mkdir()
    return directory


# a file name as a Linux volume may hold one: any bytes but '/' and NUL (so not always UTF-8)
_names = st.binary(min_size=1, max_size=60).filter(
    lambda b: b"/" not in b and b"\x00" not in b and b not in (b".", b"..")
)
_pretty = st.sampled_from(
    ["a\nb.tmp", "x\u2028y.tmp", "nel\x85.tmp", "cr\r.tmp", "tab\t\x1b[31m.tmp", '{"path": "evil"}.tmp', "ü.tmp"]
)
_any_names = st.lists(st.one_of(_names, _pretty.map(os.fsencode)), min_size=1, max_size=5, unique=True)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=_any_names, dry=st.booleans())
def test_property_any_file_name_gives_one_line_that_names_it_exactly(
    tmp_path_factory: pytest.TempPathFactory, names: list[bytes], dry: bool
) -> None:
    base = tmp_path_factory.mktemp("case")
    root, audit_dir = base / "volume", base / "audit"
    root.mkdir()
    audit_dir.mkdir()
    now = datetime.now(UTC).replace(microsecond=0)
    old = now.timestamp() - 30 * 3600
    for name in names:
        path = os.path.join(os.fsencode(root), name)
        with open(path, "wb") as handle:
            handle.write(b"x")
        os.utime(path, (old, old))
    policy = effective_policy(root, orphans={"maxAgeHours": 24}, audit={"directory": str(audit_dir)})

    status = _run(policy, root, now, dry_run=dry)

    assert status.phase is RunPhase.SUCCEEDED, status.message
    lines = _raw_lines(audit_dir / BASE)
    assert len(lines) == len(names)  # one line per file, whatever its name holds
    assert all(len(line.decode("utf-8").splitlines()) == 1 for line in lines)  # no U+2028 split either
    recorded = sorted(os.fsencode(json.loads(line)["path"]) for line in lines)
    assert recorded == sorted(names)  # the exact bytes of each name come back


@pytest.mark.parametrize("mtime", [-1e12, 1e12, 2.0**62], ids=["before year 1", "after 9999", "2^62"])
def test_a_time_the_calendar_cannot_show_is_recorded_not_raised(audit_dir: Path, mtime: float) -> None:
    policy = effective_policy("/data/tmp", audit={"directory": str(audit_dir)})
    audit = open_audit(policy.backend, LABELS)
    assert audit is not None
    audit.open()
    try:
        audit.record(AuditEntry("odd.tmp", "Expired", 1, mtime, planned=False))
    finally:
        audit.close()

    (line,) = [json.loads(raw) for raw in _raw_lines(audit_dir / BASE)]
    assert line["path"] == "odd.tmp" and line["mtime"] == mtime  # the POSIX seconds, as the storage gave them


def test_an_audit_file_swapped_for_a_symlink_is_not_written_through(tree: Tree, audit_dir: Path, now: datetime,
                                                                    tmp_path: Path) -> None:
    victim = tmp_path / "victim.conf"
    victim.write_text("precious\n")
    (audit_dir / BASE).symlink_to(victim)
    tree.file("stale.tmp", age_hours=30)
    policy = effective_policy(tree.root, orphans={"maxAgeHours": 24}, audit={"directory": str(audit_dir)})

    status = _run(policy, tree.root, now)

    assert victim.read_text() == "precious\n"
    assert status.phase is RunPhase.FAILED and status.reason is not None
    assert status.reason.value == "AuditUnavailable" and BASE in status.message
    assert tree.files() == {"stale.tmp"}  # no record, no deletion


@pytest.mark.timeout(20)
def test_an_audit_file_swapped_for_a_fifo_fails_the_run_instead_of_hanging(tree: Tree, audit_dir: Path,
                                                                           now: datetime) -> None:
    os.mkfifo(audit_dir / BASE)
    tree.file("stale.tmp", age_hours=30)
    policy = effective_policy(tree.root, orphans={"maxAgeHours": 24}, audit={"directory": str(audit_dir)})

    status = _run(policy, tree.root, now)

    assert status.phase is RunPhase.FAILED and status.reason is not None
    assert status.reason.value == "AuditUnavailable" and "not a regular file" in status.message
    assert tree.files() == {"stale.tmp"}


def test_an_audit_error_is_the_only_failure_a_record_raises(audit_dir: Path) -> None:
    """The applier stops on AuditError; anything else would escape mid-run after the file was deleted."""
    policy = effective_policy("/data/tmp", audit={"directory": str(audit_dir)})
    audit = open_audit(policy.backend, LABELS)
    assert audit is not None
    audit.open()
    try:
        audit.record(AuditEntry("\udcff-lone-surrogate.tmp", "Expired", 1, 0.0, planned=True))
    except AuditError:
        pytest.fail("a name from the file system is always recordable")
    finally:
        audit.close()


@pytest.mark.parametrize(
    ("namespace", "name"),
    [("default", "../escaped"), ("..", "x"), ("default", "a/b"), ("default", "nul\x00byte")],
    ids=["name climbs out", "namespace climbs out", "name has a slash", "NUL"],
)
def test_a_policy_name_that_is_not_one_file_name_is_refused(
    tmp_path: Path, audit_dir: Path, namespace: str, name: str
) -> None:
    """The CLI reads metadata from a file (the API server would have refused these names)."""
    policy = effective_policy("/data/tmp", audit={"directory": str(audit_dir)})
    audit = open_audit(policy.backend, AuditLabels(namespace, name, "r", "Orphaned"))
    assert audit is not None

    with pytest.raises(AuditError, match="metadata"):
        audit.open()
    audit.close()

    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []  # nothing written anywhere


@pytest.fixture
def bind_mounted(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """The volume's ``records`` directory mounted again at ``elsewhere`` (needs the right to mount)."""
    volume, elsewhere = tmp_path / "volume", tmp_path / "elsewhere"
    (volume / "records").mkdir(parents=True)
    elsewhere.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(volume / "records"), str(elsewhere)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield volume, elsewhere
    finally:
        subprocess.run(["umount", str(elsewhere)], check=True)


def test_the_volume_mounted_again_under_another_name_is_refused(bind_mounted: tuple[Path, Path]) -> None:
    volume, elsewhere = bind_mounted
    now = datetime.now(UTC).replace(microsecond=0)
    stale = volume / "stale.tmp"
    stale.write_bytes(b"x")
    os.utime(stale, (now.timestamp() - 30 * 3600,) * 2)
    policy = effective_policy(volume, orphans={"maxAgeHours": 24}, audit={"directory": str(elsewhere)})

    status = _run(policy, volume, now)

    assert status.phase is RunPhase.FAILED and status.reason is not None
    assert status.reason.value == "AuditUnavailable" and "mounted under another name" in status.message
    assert stale.exists() and not (volume / "records" / BASE).exists()


def test_the_mount_table_names_a_bind_mount_by_the_directory_it_shows(tmp_path: Path) -> None:
    table = tmp_path / "mountinfo"
    table.write_text(
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "42 27 254:0 /data/tmp/rec\\040ords /audit rw,relatime - ext4 /dev/vda rw\n"
        "43 27 0:51 / /scratch rw - tmpfs tmpfs rw\n"
    )

    assert device_location("/audit/x", str(table)) == ("254:0", "/data/tmp/rec ords/x")
    assert device_location("/scratch", str(table)) == ("0:51", "/")
    assert device_location("/var/log", str(table)) == ("254:0", "/var/log")
    assert device_location("/var/log", str(tmp_path / "missing")) is None
