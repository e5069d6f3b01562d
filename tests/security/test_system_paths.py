"""``/`` and system paths are never cleaned, whatever TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS lists.

A root that is ``/`` or a system path grants nothing: listing ``/`` does not open ``/root``, ``/var/lib``,
``/run/secrets`` or anything else. Policy validation refuses the system paths themselves; the
operator's check refuses them again, so neither depends on the other.
"""

from __future__ import annotations

import pytest

from tempsweep.models import load_settings
from tempsweep.models.paths import SYSTEM_PATHS, check_volume_path
from tempsweep.models.roots import volume_path_refusal


def refusal(path: str, allowed: str) -> str | None:
    return volume_path_refusal(path, "team-a", load_settings({"TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS": allowed}))


@pytest.mark.parametrize("path", sorted(SYSTEM_PATHS))
def test_every_system_path_is_refused_even_when_slash_is_an_allowed_root(path: str) -> None:
    message = refusal(path, "/")

    assert message is not None
    assert "system path" in message or "not under an allowed root" in message


@pytest.mark.parametrize(
    "path",
    [
        "/etc/tempsweep",
        "/usr/local/tmp",
        "/proc/1/root",
        "/sys/fs/cgroup",
        "/dev/shm",
        "/boot/efi",
        "/lib/modules",
        "/bin/x",
        "/sbin/x",
    ],
)
def test_paths_inside_system_trees_are_refused(path: str) -> None:
    message = refusal(path, "/")

    assert message is not None
    assert "is a system path and is never cleaned" in message


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/root/.ssh", "/"),
        ("/home/user", "/"),
        ("/var/lib/kubelet/pods", "/"),
        ("/run/secrets/kubernetes.io/serviceaccount", "/"),
        ("/data/tmp", "/"),
        ("/var/lib/kubelet/pods", "/var/lib"),
        ("/var/lib/kubelet/pods", "//var/lib/"),
        ("/tmp/anything", "/tmp"),
        ("/home/user/tmp", "/home"),
        ("/srv/x", "relative:/srv"),
    ],
    ids=[
        "slash-root-ssh",
        "slash-home",
        "slash-kubelet",
        "slash-service-account-token",
        "slash-any-directory",
        "var-lib-root",
        "var-lib-root-unnormalised",
        "tmp-root",
        "home-root",
        "relative-and-srv-roots",
    ],
)
def test_system_roots_grant_nothing(path: str, allowed: str) -> None:
    message = refusal(path, allowed)

    assert message is not None
    assert "is not under an allowed root (none)" in message
    assert "never count as roots" in message


def test_a_usable_root_next_to_slash_still_works() -> None:
    assert refusal("/data/tmp", "/:/data") is None
    assert refusal("/var/lib/tempsweep/volumes/a", "/:/var/lib/tempsweep/volumes") is None
    message = refusal("/srv/other", "/:/data")
    assert message is not None
    assert "is not under an allowed root (/data)" in message
    assert "/ never count as roots" in message


def test_policy_validation_refuses_the_same_paths() -> None:
    for path in [*SYSTEM_PATHS, "/etc/x", "//", "///etc"]:
        with pytest.raises(ValueError, match="system path"):
            check_volume_path(path)
