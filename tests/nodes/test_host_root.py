"""--host-root: node paths are checked as node paths first, then found under the host root."""

from __future__ import annotations

from typing import Any

import pytest

from tempsweep.agent.hostroot import HostRoot
from tempsweep.controller.runtime import PolicyNotReady
from tempsweep.models import load_settings
from tempsweep.models.roots import volume_path_refusal

SETTINGS = load_settings({"TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS": "/data:/scratch",
                          "TEMP_STORAGE_CLEANUP_NAMESPACE_ROOTS": "team-a=/data/a"})


def body(path: str | None, namespace: str = "team-b") -> dict[str, Any]:
    volume: dict[str, Any] = {"scope": "Node"}
    if path is not None:
        volume["path"] = path
    return {"metadata": {"name": "p", "namespace": namespace}, "spec": {"storage": {"volume": volume}}}


def test_the_default_root_changes_nothing() -> None:
    host = HostRoot()
    assert host.policy(body("/data/x"), SETTINGS) == body("/data/x")
    assert host.settings(SETTINGS) is SETTINGS


def test_a_path_is_found_under_the_host_root_and_the_roots_move_with_it() -> None:
    host = HostRoot("/host")
    translated = host.policy(body("/data/x"), SETTINGS)
    settings = host.settings(SETTINGS)

    assert translated["spec"]["storage"]["volume"]["path"] == "/host/data/x"
    assert [str(root) for root in settings.allowed_root_paths] == ["/host/data", "/host/scratch"]
    assert settings.namespace_root_paths == {"team-a": ("/host/data/a",)}
    assert volume_path_refusal("/host/data/x", "team-b", settings) is None
    assert body("/data/x")["spec"]["storage"]["volume"]["path"] == "/data/x"  # the original is not changed


@pytest.mark.parametrize(
    ("path", "namespace", "why"),
    [
        ("/etc/x", "team-b", "system path"),
        ("/var", "team-b", "system path"),
        ("/elsewhere", "team-b", "not under an allowed root"),
        ("/data/a/x", "team-b", "reserved for another namespace"),
    ],
)
def test_the_node_path_is_judged_before_it_is_translated(path: str, namespace: str, why: str) -> None:
    """/host/etc would pass as a path; /etc on the node never does."""
    with pytest.raises(PolicyNotReady, match=why) as raised:
        HostRoot("/host").policy(body(path, namespace), SETTINGS)
    assert raised.value.reason == "PathNotAllowed"


def test_a_policy_without_a_path_uses_the_storage_path_setting() -> None:
    settings = load_settings({"TEMP_STORAGE_CLEANUP_TEMP_STORAGE_PATH": "/data/default"})
    translated = HostRoot("/host").policy(body(None), settings)
    assert translated["spec"]["storage"]["volume"]["path"] == "/host/data/default"


def test_a_relative_host_root_is_refused() -> None:
    with pytest.raises(ValueError, match="relative"):
        HostRoot("host")


@pytest.mark.parametrize(
    ("args", "environ", "message"),
    [
        ([], {}, "--node-name (or NODE_NAME) is required"),
        (["--node-name", "Worker_1"], {}, "--node-name: 'Worker_1' is not a node name"),
        (["--node-name", "w1", "--host-root", "host"], {}, "--host-root: 'host' is relative"),
        (["--node-name", "w1"], {"TEMP_STORAGE_CLEANUP_WARNING_THRESHOLD": "lots"}, "WARNING_THRESHOLD"),
        (["--node-name", "w1"], {}, "no Kubernetes configuration"),
        (["--node-name", "w1"], {"TEMPSWEEP_NODE_RUN_WAIT_SECONDS": "soon"}, "TEMPSWEEP_NODE_RUN_WAIT_SECONDS"),
    ],
    ids=["no-node", "bad-node", "relative-host-root", "bad-setting", "no-kubeconfig", "bad-wait"],
)
def test_bad_agent_input_is_one_line_and_exit_2(
    args: list[str], environ: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tempsweep.cli import main

    monkeypatch.delenv("NODE_NAME", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # never the in-cluster config
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    # the client reads KUBECONFIG once, when it is first imported: never a real cluster from here
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", "/nonexistent/kubeconfig")

    assert main(["agent", *args]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    assert error.startswith("tempsweep: error:") and message in error
