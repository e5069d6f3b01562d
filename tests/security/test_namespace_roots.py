"""TEMP_STORAGE_CLEANUP_NAMESPACE_ROOTS: which namespace may clean which root, decided by the operator's settings.

A listed namespace may use only its own roots; no namespace may use a root reserved for another, even
under ALLOWED_ROOTS; the longest reserved root containing a path owns it; unlisted namespaces get
ALLOWED_ROOTS minus every reserved root. Refusals never name the other namespace.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from security.trees import OLD
from sweep_helpers import Tree, policy_document
from tempsweep.controller.runtime import PolicyNotReady, build_runtime
from tempsweep.controller.state import OperatorState
from tempsweep.models import OperatorSettings, SettingsError, load_settings
from tempsweep.models.roots import volume_path_refusal

VARIABLE = "TEMP_STORAGE_CLEANUP_NAMESPACE_ROOTS"


def settings(namespace_roots: str | None, allowed: str = "/v") -> OperatorSettings:
    env = {"TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS": allowed}
    if namespace_roots is not None:
        env[VARIABLE] = namespace_roots
    return load_settings(env)


def test_the_mapping_is_parsed_and_normalised() -> None:
    parsed = settings(" team-a=/v/a:/v//a2/ , team-b=/v/b,").namespace_root_paths

    assert parsed == {"team-a": ("/v/a", "/v/a2"), "team-b": ("/v/b",)}


def test_unset_means_no_namespace_is_restricted() -> None:
    assert settings(None).namespace_root_paths == {}
    assert settings("").namespace_root_paths == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("team-a/v/a", "'team-a/v/a' is not NAMESPACE=/root[:/root...]"),
        ("team-a=", "is not NAMESPACE=/root"),
        ("team-a=:", "namespace team-a has no roots"),
        ("Team_A=/v/a", "'Team_A' is not a namespace name"),
        ("team-a=/v/a,team-a=/v/b", "namespace team-a is listed twice"),
        ("team-a=v/a", "namespace team-a: 'v/a' is relative"),
        ("team-a=/v/a/../b", "namespace team-a: '/v/a/../b' contains '..'"),
        ("team-a=/", "namespace team-a: '/' is a system path"),
        ("team-a=/etc/tempsweep", "namespace team-a: '/etc/tempsweep' is a system path"),
        ("team-a=/v/x,team-b=/v/x", "/v/x is assigned to both team-a and team-b"),
        ("team-a=/elsewhere", "/elsewhere (namespace team-a) is not under TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS (/v)"),
    ],
    ids=[
        "no-equals",
        "no-roots",
        "only-separators",
        "bad-namespace",
        "namespace-twice",
        "relative-root",
        "dotdot-root",
        "slash-root",
        "system-root",
        "root-for-two-namespaces",
        "root-outside-allowed-roots",
    ],
)
def test_a_bad_mapping_is_an_error_naming_the_variable(value: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings(value)

    assert str(caught.value).startswith(f"{VARIABLE}: ")
    assert message in str(caught.value)


MAPPING = "team-a=/v/a:/v/shared/a,team-b=/v/b,team-c=/v/b/c"


@pytest.mark.parametrize(
    ("namespace", "path"),
    [
        ("team-a", "/v/a"),
        ("team-a", "/v/a/tmp"),
        ("team-a", "/v/shared/a/tmp"),
        ("team-b", "/v/b/tmp"),
        ("team-c", "/v/b/c/tmp"),
        ("unlisted", "/v/free/tmp"),
        ("unlisted", "/v/ab"),
    ],
    ids=[
        "own-root",
        "own-root-below",
        "second-own-root",
        "team-b",
        "nested-root-owner",
        "unlisted-free",
        "prefix-lookalike",
    ],
)
def test_allowed(namespace: str, path: str) -> None:
    assert volume_path_refusal(path, namespace, settings(MAPPING)) is None


@pytest.mark.parametrize(
    ("namespace", "path", "message"),
    [
        (
            "team-a",
            "/v/b/tmp",
            "is under a root reserved for another namespace (namespace team-a may use /v/a:/v/shared/a)",
        ),
        ("team-a", "/v/b", "is under a root reserved for another namespace"),
        ("team-b", "/v/b/c/tmp", "is under a root reserved for another namespace (namespace team-b may use /v/b)"),
        ("team-c", "/v/b/tmp", "is under a root reserved for another namespace"),
        ("team-a", "/v/free/tmp", "is not under the roots of namespace team-a (/v/a:/v/shared/a)"),
        ("team-a", "/v/ab", "is not under the roots of namespace team-a"),
        ("team-a", "/v/shared", "is not under the roots of namespace team-a"),
        ("unlisted", "/v/a/tmp", "is under a root reserved for another namespace;"),
        ("unlisted", "/v/b/c", "is under a root reserved for another namespace;"),
        ("team-a", "/elsewhere/a", "is not under an allowed root (/v)"),
    ],
    ids=[
        "other-namespaces-root",
        "other-namespaces-root-itself",
        "nested-root-of-another",
        "parent-root-of-another",
        "listed-outside-own-roots",
        "prefix-lookalike",
        "parent-of-own-root",
        "unlisted-into-reserved",
        "unlisted-into-nested-reserved",
        "outside-allowed-roots",
    ],
)
def test_refused(namespace: str, path: str, message: str) -> None:
    refusal = volume_path_refusal(path, namespace, settings(MAPPING))

    assert refusal is not None
    assert refusal.startswith(f"spec.storage.volume.path {path} ")
    assert message in refusal
    decider = VARIABLE if "allowed root" not in message else "TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS"
    assert decider in refusal
    # whose root it is stays private: only the policy's own namespace is named
    for other in {"team-a", "team-b", "team-c"} - {namespace}:
        assert other not in refusal


@pytest.mark.parametrize(
    "path",
    ["/v/a/../b/tmp", "v/a/tmp", "/v/a/./../b"],
    ids=["dotdot", "relative", "dot-dotdot"],
)
def test_path_tricks_are_refused_before_roots_are_consulted(path: str) -> None:
    refusal = volume_path_refusal(path, "team-a", settings(MAPPING))

    assert refusal is not None
    assert refusal.startswith("spec.storage.volume.path: ")


# -- wired into the operator: build_runtime refuses before any storage is opened ------------------


def _body(namespace: str, path: Path, name: str = "attack") -> dict[str, object]:
    document = policy_document(path, name=name)
    document["metadata"]["namespace"] = namespace
    return document


def test_build_runtime_refuses_another_namespaces_root(tmp_path: Path, volume: Tree) -> None:
    theirs = volume.file("b/job_1_victim.tmp", age_hours=OLD).parent
    env = {
        "TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS": str(volume.root),
        VARIABLE: f"team-b={theirs}",
    }

    with pytest.raises(PolicyNotReady) as caught:
        build_runtime(_body("team-a", theirs), OperatorState(load_settings(env)))

    assert caught.value.reason == "PathNotAllowed"
    assert "reserved for another namespace" in str(caught.value)
    assert "team-b" not in str(caught.value)
    assert volume.files() == {"b/job_1_victim.tmp"}


def test_build_runtime_accepts_the_owning_namespace(volume: Tree) -> None:
    theirs = volume.root / "b"
    theirs.mkdir()
    env = {"TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS": str(volume.root), VARIABLE: f"team-b={theirs}"}

    runtime = build_runtime(_body("team-b", theirs, name="own"), OperatorState(load_settings(env)))

    assert runtime.storage.description == f"volume {theirs}"
    assert runtime.namespace == "team-b"
