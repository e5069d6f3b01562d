"""Offline, the same storage rules as in the cluster: the admin's allowed roots, and a minFreeSpace the
storage can actually satisfy (an inherited one that it cannot is not applied; an explicit one is refused).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.mounts import Mounts
from sweep_helpers import Tree, Workspace, policy_document, run_document
from tempsweep.cli import main
from tempsweep.models import load_settings
from tempsweep.models.roots import volume_path_refusal

OLD_FILES = {"stale.tmp", "job_1_a.tmp", "nested/old.tmp"}
MiB = 2**20


def _run_args(workspace: Workspace, policy: object, run: object, *extra: str) -> list[str]:
    return ["run", "-f", str(workspace.write("run.yaml", run)), "--policy", str(workspace.write("policy.yaml", policy)),
            *extra]


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("tempsweep: error:")]
    assert len(lines) == 1, captured.err
    assert captured.out == ""
    return lines[0]


# -- allowed roots -------------------------------------------------------------------------------


def test_the_reproduction_a_system_directory_outside_the_allowed_roots_is_refused(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``tempsweep run ... --path /var/lib/dpkg --dry-run`` with ALLOWED_ROOTS=/srv/tmp planned 2 826 deletions."""
    monkeypatch.setenv("TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS", "/srv/tmp")
    args = _run_args(workspace, policy_document(workspace.tree.root), run_document("Orphaned"),
                     "--path", "/var/lib/dpkg", "--dry-run")

    assert main(args) == 2
    line = _error_line(capsys)
    assert line == (
        "tempsweep: error: --path /var/lib/dpkg is not under an allowed root (/srv/tmp); "
        "TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS decides"
    )


@pytest.mark.parametrize("command", ["run", "scan"])
def test_a_policy_path_outside_the_allowed_roots_is_refused_with_the_clusters_message(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    allowed = workspace.base / "allowed"
    allowed.mkdir()
    monkeypatch.setenv("TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS", str(allowed))
    args = _run_args(workspace, policy_document(workspace.tree.root), run_document("Orphaned", maxAgeHours=1))
    if command == "scan":
        args = ["scan", "--policy", args[4]]

    assert main(args) == 2
    line = _error_line(capsys)
    in_cluster = volume_path_refusal(str(workspace.tree.root), "default", load_settings())
    assert in_cluster is not None
    assert line == f"tempsweep: error: {workspace.base / 'policy.yaml'}: {in_cluster}"
    assert workspace.tree.files() == OLD_FILES


def test_a_volume_under_an_allowed_root_runs(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS", f"/srv/tmp:{workspace.base}")
    args = _run_args(workspace, policy_document(workspace.tree.root), run_document("Orphaned", maxAgeHours=1))

    assert main(args) == 0
    assert workspace.tree.files() == set()


def test_namespace_roots_bind_the_policys_namespace_offline(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The volume is reserved for team-a: a policy of team-b (or of no namespace, i.e. default) is refused."""
    monkeypatch.setenv("TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS", str(workspace.base))
    monkeypatch.setenv("TEMP_STORAGE_CLEANUP_NAMESPACE_ROOTS", f"team-a={workspace.tree.root}")
    run = run_document("Orphaned", maxAgeHours=1)
    for namespace in ("team-b", None):
        policy = policy_document(workspace.tree.root)
        if namespace:
            policy["metadata"]["namespace"] = namespace
        assert main(_run_args(workspace, policy, run)) == 2
        line = _error_line(capsys)
        assert "is under a root reserved for another namespace" in line
        assert "TEMP_STORAGE_CLEANUP_NAMESPACE_ROOTS decides" in line
        assert workspace.tree.files() == OLD_FILES

    policy = policy_document(workspace.tree.root)
    policy["metadata"]["namespace"] = "team-a"
    assert main(_run_args(workspace, policy, run)) == 0
    assert workspace.tree.files() == set()


# -- minFreeSpace against the storage's size ----------------------------------------------------


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Workspace]:
    """A real 20 MiB tmpfs with three old files and one new one."""
    from datetime import UTC, datetime

    with Mounts(required=True) as mounts:
        root = mounts.tmpfs(tmp_path / "small", size="20m")
        tree = Tree(root, datetime.now(UTC))
        for name in ("stale.tmp", "job_1_a.tmp", "nested/old.tmp"):
            tree.file(name, age_hours=1000, size=MiB)
        tree.file("fresh.tmp", size=MiB)
        yield Workspace(tmp_path, tree)


@pytest.mark.parametrize("kind", ["Emergency", "Scheduled"])
def test_the_inherited_default_larger_than_the_filesystem_is_not_applied(
    small_volume: Workspace, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """The reproduction: on a 20 MiB volume the default 1 GiB floor made every check an emergency that
    deleted every file, however new. Now: a warning line, the effective floor 0 in the JSON, no emergency."""
    policy = policy_document(small_volume.tree.root, thresholds=None, orphans={"maxAgeHours": 2000})
    args = _run_args(small_volume, policy, run_document(kind))

    code = main(args)

    captured = capsys.readouterr()
    assert code == 0, captured.err
    warnings = [line for line in captured.err.splitlines() if line.startswith("tempsweep: warning:")]
    assert len(warnings) == 1
    assert "TEMP_STORAGE_CLEANUP_MIN_FREE_SPACE_GB (1.0GiB) is not below the filesystem size (20.0MiB)" in warnings[0]
    assert "not applied" in warnings[0]
    status = json.loads(captured.out)
    assert status["effectiveMinFreeSpaceBytes"] == 0
    assert status["filesDeleted"] == 0
    assert small_volume.tree.files() == OLD_FILES | {"fresh.tmp"}


def test_the_inherited_default_shows_in_scan_too(small_volume: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    policy = policy_document(small_volume.tree.root, thresholds=None)

    assert main(["scan", "--policy", str(small_volume.write("policy.yaml", policy))]) == 0

    captured = capsys.readouterr()
    stats = json.loads(captured.out)
    assert stats["effectiveMinFreeSpaceBytes"] == 0
    assert stats["cleanupNeeded"] is False
    assert "not applied" in captured.err


@pytest.mark.parametrize("command", ["run", "scan"])
def test_an_explicit_floor_the_filesystem_can_never_meet_is_refused(
    small_volume: Workspace, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    policy = policy_document(small_volume.tree.root, thresholds={"minFreeSpace": "20Mi"})
    args = _run_args(small_volume, policy, run_document("Emergency"))
    if command == "scan":
        args = ["scan", "--policy", args[4]]

    assert main(args) == 2

    line = _error_line(capsys)
    policy_file = small_volume.base / "policy.yaml"
    assert line.startswith(f"tempsweep: error: {policy_file}: spec.thresholds.minFreeSpace (20.0MiB)")
    assert "must be smaller than the filesystem size (20.0MiB)" in line
    assert small_volume.tree.files() == OLD_FILES | {"fresh.tmp"}


def test_an_inherited_default_not_below_the_capacity_is_valid_and_not_applied(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    """``capacity: 1Gi`` with no minFreeSpace used to be invalid because of the 1 GiB default."""
    policy = policy_document(workspace.tree.root, thresholds=None, storage={"volume": {"capacity": "1Gi"}})
    args = _run_args(workspace, policy, run_document("Emergency"))

    assert main(args) == 0

    captured = capsys.readouterr()
    assert "is not below the capacity (1.0GiB)" in captured.err
    assert json.loads(captured.out)["effectiveMinFreeSpaceBytes"] == 0
    assert workspace.tree.files() == OLD_FILES


def test_an_explicit_floor_equal_to_the_capacity_is_refused(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = policy_document(
        workspace.tree.root, thresholds={"minFreeSpace": "1Gi"}, storage={"volume": {"capacity": "1Gi"}}
    )
    assert main(_run_args(workspace, policy, run_document("Emergency"))) == 2
    assert "spec.thresholds.minFreeSpace (1.0GiB) must be smaller than the capacity (1.0GiB)" in _error_line(capsys)
    assert workspace.tree.files() == OLD_FILES
