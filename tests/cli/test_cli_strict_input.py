"""Strict input: only the keys a Kubernetes object has, each key once, no anchors or aliases, bounded size.

Every case is a real file given to the CLI; the answer is exit 2, one line naming the file (and the line
and field where there is one), nothing deleted -- for the policy file and for the run file alike.
"""

from __future__ import annotations

import json
import re
import string
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sweep_helpers import Workspace, policy_document, run_document
from tempsweep.cli import main
from tempsweep.cli.strict_yaml import MAX_MANIFEST_BYTES, ManifestError, load_manifest

OLD_FILES = {"stale.tmp", "job_1_a.tmp", "nested/old.tmp"}
DELETING_RUN = run_document("Orphaned", maxAgeHours=1)


def _dump(document: Any) -> str:
    return yaml.safe_dump(document, sort_keys=False)


def _cli(workspace: Workspace, policy: Any, run: Any) -> list[str]:
    policy_path = workspace.write("policy.yaml", policy)
    run_path = workspace.write("run.yaml", run)
    return ["run", "-f", str(run_path), "--policy", str(policy_path)]


def _refused(workspace: Workspace, capsys: pytest.CaptureFixture[str], arguments: list[str]) -> str:
    """Exit 2, exactly one error line, no JSON, every old file still there; returns the line."""
    code = main(arguments)
    captured = capsys.readouterr()
    assert code == 2, captured.err
    lines = [line for line in captured.err.splitlines() if line.startswith("tempsweep: error:")]
    assert len(lines) == 1, captured.err
    assert captured.out == ""
    assert workspace.tree.files() == OLD_FILES
    return lines[0]


# -- top-level keys ----------------------------------------------------------------------------


def test_dry_run_one_level_too_far_out_is_refused_not_dropped(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reproduction: ``dryRun: true`` at the top level was ignored and the run deleted."""
    run = _dump(DELETING_RUN) + "dryRun: true\n"

    line = _refused(workspace, capsys, _cli(workspace, policy_document(workspace.tree.root), run))

    assert "run.yaml: dryRun: unknown field" in line
    assert "did you mean spec.dryRun?" in line


def test_an_unknown_top_level_key_of_a_policy_is_refused(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = {**policy_document(workspace.tree.root), "suspend": True}

    line = _refused(workspace, capsys, _cli(workspace, policy, DELETING_RUN))

    assert "policy.yaml: suspend: unknown field (the top level holds only apiVersion, kind, metadata, spec" in line


def test_a_status_block_is_accepted_and_ignored(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    """A manifest saved with ``kubectl get -o yaml`` carries status; it changes nothing."""
    run = {**DELETING_RUN, "spec": {**DELETING_RUN["spec"], "dryRun": True}, "status": {"phase": "Succeeded"}}
    policy = {**policy_document(workspace.tree.root), "status": {"health": "Healthy"}}

    code = main(_cli(workspace, policy, run))

    assert code == 0
    assert json.loads(capsys.readouterr().out)["wouldDeleteCount"] == 3
    assert workspace.tree.files() == OLD_FILES


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"storage": {"volume": {"sizeLimit": "1Gi"}}}, "spec.storage.volume.sizeLimit: unknown field"),
        ({"jobs": {"database": {"url": "sqlite://", "tabel": "jobs"}}}, "spec.jobs.database.tabel: unknown field"),
        ({"thresholds": {"minFreeSpaceGb": 1}}, "spec.thresholds.minFreeSpaceGb: unknown field"),
        ({"schedule": {"orphans": "0 * * * *"}}, "spec.schedule.orphans: unknown field"),
        ({"dryrun": True}, "spec.dryrun: unknown field"),
    ],
    ids=["volume", "database", "thresholds", "schedule", "spec"],
)
def test_an_unknown_field_at_any_depth_of_a_policy_is_refused(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], where: dict[str, Any], expected: str
) -> None:
    policy = policy_document(workspace.tree.root, **where)

    line = _refused(workspace, capsys, _cli(workspace, policy, DELETING_RUN))

    assert f"policy.yaml: {expected}" in line


def test_an_unknown_field_in_a_runs_policy_ref_is_refused(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    run = {**DELETING_RUN, "spec": {**DELETING_RUN["spec"], "policyRef": {"name": "test-policy", "namespace": "x"}}}

    line = _refused(workspace, capsys, _cli(workspace, policy_document(workspace.tree.root), run))

    assert "run.yaml: spec.policyRef.namespace: unknown field" in line


# -- duplicate keys ------------------------------------------------------------------------------


def test_a_duplicate_key_in_the_run_is_refused_with_both_lines(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    """The last one would win: ``dryRun: false`` further down would undo the first."""
    run = (
        "apiVersion: tempsweep.io/v1alpha1\nkind: CleanupRun\nmetadata:\n  name: r\n"
        "spec:\n  dryRun: true\n  policyRef:\n    name: test-policy\n  type: Orphaned\n"
        "  maxAgeHours: 1\n  dryRun: false\n"
    )

    line = _refused(workspace, capsys, _cli(workspace, policy_document(workspace.tree.root), run))

    assert "run.yaml: line 11, column 3: spec.dryRun: duplicate key (first given at line 6)" in line


def test_a_duplicate_key_deep_in_the_policy_is_refused(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    root = workspace.tree.root
    policy = (
        "apiVersion: tempsweep.io/v1alpha1\nkind: CleanupPolicy\nmetadata:\n  name: test-policy\n"
        f"spec:\n  storage:\n    volume:\n      path: /srv/other\n      path: {root}\n"
    )

    line = _refused(workspace, capsys, _cli(workspace, policy, DELETING_RUN))

    assert "policy.yaml: line 9, column 7: spec.storage.volume.path: duplicate key (first given at line 8)" in line


def test_a_duplicate_top_level_spec_is_refused(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    run = _dump(DELETING_RUN) + "spec:\n  policyRef:\n    name: test-policy\n  type: Emergency\n"

    line = _refused(workspace, capsys, _cli(workspace, policy_document(workspace.tree.root), run))

    assert "run.yaml: line" in line and "spec: duplicate key" in line


_KEY_LINE = re.compile(r"^( *)[A-Za-z]+:")
_names = st.text(alphabet=string.ascii_letters, min_size=1, max_size=6)
_documents = st.dictionaries(
    _names,
    st.recursive(
        st.integers() | st.booleans() | _names,
        lambda children: st.dictionaries(_names, children, min_size=1, max_size=4)
        | st.lists(children, min_size=1, max_size=3),
        max_leaves=15,
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=_documents, choice=st.integers(min_value=0))
def test_property_a_key_repeated_in_any_mapping_is_refused_and_nothing_else_changes(
    tmp_path: Path, document: dict[str, Any], choice: int
) -> None:
    """Random nested documents load as they are; the same text with any one key line repeated in its own
    mapping (even with the same value) is refused, naming that key."""
    text = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
    file = tmp_path / "doc.yaml"
    file.write_text(text, encoding="utf-8")
    assert load_manifest(str(file)) == document

    lines = text.splitlines()
    keys = [i for i, line in enumerate(lines) if _KEY_LINE.match(line)]
    assume(keys)
    index = keys[choice % len(keys)]
    file.write_text("\n".join([*lines[: index + 1], lines[index], *lines[index + 1 :]]) + "\n", encoding="utf-8")
    key = lines[index].strip().partition(":")[0]
    with pytest.raises(ManifestError, match=rf"{key}: duplicate key \(first given at line {index + 1}\)"):
        load_manifest(str(file))


# -- anchors, aliases, merge keys, depth, size ---------------------------------------------------

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (LAUGHS, "line 1, column 4: YAML anchors (&a) are not accepted"),
        ("spec: &s\n  type: Emergency\n", "YAML anchors (&s) are not accepted"),
        ("metadata:\n  name: r\nspec: *s\n", "YAML aliases (*s) are not accepted"),
        ("spec:\n  <<: {type: Emergency}\n  policyRef: {name: p}\n", "spec: merge keys (<<) are not accepted"),
        ("spec:\n  ? [a, b]\n  : 1\n", "spec: keys that are not plain values are not accepted"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 64 levels deep"),
        ("spec:\n  maxAgeHours: 1" + "0" * 5000 + "\n", "run.yaml: not valid YAML"),
        (b"spec:\n  type: \xff\xfe\n", "run.yaml: cannot be read: not UTF-8"),
    ],
    ids=["billion-laughs", "anchor", "alias", "merge-key", "complex-key", "deep-nesting", "huge-integer", "not-utf8"],
)
def test_yaml_features_a_manifest_does_not_need_are_refused(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], text: str | bytes, expected: str
) -> None:
    arguments = _cli(workspace, policy_document(workspace.tree.root), "placeholder: 1\n")
    run_file = Path(arguments[2])
    run_file.write_bytes(text if isinstance(text, bytes) else text.encode())

    line = _refused(workspace, capsys, arguments)

    assert expected in line
    assert "run.yaml" in line


def test_a_file_over_the_size_limit_is_refused_unread_and_one_at_the_limit_is_read(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_text = _dump(policy_document(workspace.tree.root))
    run_text = _dump({**DELETING_RUN, "spec": {**DELETING_RUN["spec"], "dryRun": True}})
    padded = run_text + "#" * (MAX_MANIFEST_BYTES - len(run_text) - 1) + "\n"
    assert len(padded.encode()) == MAX_MANIFEST_BYTES

    assert main(_cli(workspace, policy_text, padded)) == 0
    capsys.readouterr()

    line = _refused(workspace, capsys, _cli(workspace, policy_text + "#" * MAX_MANIFEST_BYTES + "\n", run_text))
    assert "policy.yaml: larger than 1572864 bytes (1.5 MiB, etcd's object size limit)" in line


def test_an_endless_file_is_refused_without_reading_it_all(workspace: Workspace) -> None:
    """/dev/zero as the policy: refused by size after reading 1.5 MiB, not after filling memory."""
    run_path = workspace.write("run.yaml", DELETING_RUN)
    finished = subprocess.run(
        [sys.executable, "-m", "tempsweep.cli", "run", "-f", str(run_path), "--policy", "/dev/zero"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 2
    assert finished.stderr.strip() == (
        "tempsweep: error: /dev/zero: larger than 1572864 bytes (1.5 MiB, etcd's object size limit); refused unread"
    )
    assert workspace.tree.files() == OLD_FILES
