"""Least privilege, proven both ways, and the security model attacked through the real API server.

Not excessive: `kubectl auth can-i --as=<the operator's ServiceAccount>` after applying manifests/base.
Sufficient: `tempsweep operator` runs with a TokenRequest token of that ServiceAccount and does its whole
job (stats, a run, events, TTL deletion) without a single Forbidden.
Attacks: a run naming another namespace's policy, a policy on another namespace's root, path tricks,
symlinks and mount points, and a secret that must never show. Each attack test has bait (old files the
cleanup would delete if it reached them); the policies are "armed" so that any escape would delete
within a tick, and a policy beside them deletes its own files to prove the timers really ran.
"""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest
import yaml

from support.controlplane import ControlPlane, Kubectl
from support.mounts import Mounts
from support.operator_process import OperatorProcess
from support.probing import wait_for
from support.security_world import OLD_HOURS, World, files, make_files, policy, run
from support.service_account import OPERATOR_USER, can_i, install_base, isolated_env, token_kubeconfig

pytestmark = pytest.mark.e2e

CANARY = "Canary-S3cret-9f2"
CANARY_URL = f"postgresql+psycopg://u:{CANARY}@127.0.0.1:1/db"
POLICIES, RUNS = "cleanuppolicies.tempsweep.io", "cleanupruns.tempsweep.io"


@pytest.fixture(scope="module")
def installed(kubectl: Kubectl) -> None:
    install_base(kubectl)


# -- not excessive: kubectl auth can-i -------------------------------------------------------------

CAN: list[tuple[str, str, str | None]] = [
    ("get", POLICIES, None),
    ("list", POLICIES, None),
    ("watch", POLICIES, None),
    ("patch", POLICIES, None),
    ("patch", POLICIES, "status"),
    ("get", RUNS, None),
    ("list", RUNS, None),
    ("watch", RUNS, None),
    ("patch", RUNS, None),
    ("patch", RUNS, "status"),
    ("delete", RUNS, None),
    ("create", "events", None),
    ("patch", "events", None),
    ("create", "events.events.k8s.io", None),
    ("get", "secrets", None),
]

CANNOT: list[tuple[str, str]] = [
    ("delete", "pods"),
    ("create", "pods"),
    ("create", "pods/exec"),
    ("create", "deployments.apps"),
    ("patch", "deployments.apps"),
    ("delete", POLICIES),
    ("create", POLICIES),
    ("update", POLICIES),
    ("create", RUNS),
    ("list", "secrets"),
    ("watch", "secrets"),
    ("create", "secrets"),
    ("update", "secrets"),
    ("patch", "secrets"),
    ("delete", "secrets"),
    ("get", "configmaps"),
    ("create", "serviceaccounts/token"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("delete", "events"),
]

CANNOT_CLUSTER: list[tuple[str, str]] = [
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("escalate", "clusterroles.rbac.authorization.k8s.io"),
    ("bind", "clusterroles.rbac.authorization.k8s.io"),
    ("impersonate", "users"),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("delete", "namespaces"),
    ("get", "nodes"),
    ("*", "*"),
]


@pytest.mark.parametrize(
    ("verb", "resource", "subresource"), CAN, ids=[f"{v}-{r}{'-' + s if s else ''}" for v, r, s in CAN]
)
def test_the_operator_can(kubectl: Kubectl, installed: None, verb: str, resource: str, subresource: str | None) -> None:
    assert can_i(kubectl, OPERATOR_USER, verb, resource, namespace="team-x", subresource=subresource)


@pytest.mark.parametrize(("verb", "resource"), CANNOT, ids=[f"{v}-{r}" for v, r in CANNOT])
def test_the_operator_cannot(kubectl: Kubectl, installed: None, verb: str, resource: str) -> None:
    assert not can_i(kubectl, OPERATOR_USER, verb, resource, namespace="team-x")
    assert not can_i(kubectl, OPERATOR_USER, verb, resource, namespace="kube-system")


@pytest.mark.parametrize(("verb", "resource"), CANNOT_CLUSTER, ids=[f"{v}-{r}" for v, r in CANNOT_CLUSTER])
def test_the_operator_cannot_touch_the_cluster(kubectl: Kubectl, installed: None, verb: str, resource: str) -> None:
    assert not can_i(kubectl, OPERATOR_USER, verb, resource)


@pytest.mark.parametrize("verb", ["list", "create", "update", "delete"])
def test_shard_leases_only_in_the_operator_namespace(kubectl: Kubectl, installed: None, verb: str) -> None:
    assert can_i(kubectl, OPERATOR_USER, verb, "leases.coordination.k8s.io", namespace="tempsweep-system")
    assert not can_i(kubectl, OPERATOR_USER, verb, "leases.coordination.k8s.io", namespace="team-x")
    assert not can_i(kubectl, OPERATOR_USER, verb, "leases.coordination.k8s.io", namespace="kube-system")
    assert not can_i(kubectl, OPERATOR_USER, "patch", "leases.coordination.k8s.io", namespace="tempsweep-system")


def test_what_kopf_needs_cluster_wide_is_read_only(kubectl: Kubectl, installed: None) -> None:
    for resource in ("customresourcedefinitions.apiextensions.k8s.io", "namespaces"):
        assert can_i(kubectl, OPERATOR_USER, "list", resource)
        assert can_i(kubectl, OPERATOR_USER, "watch", resource)
        assert not can_i(kubectl, OPERATOR_USER, "get", resource)
        assert not can_i(kubectl, OPERATOR_USER, "create", resource)


def test_narrowing_secrets_to_a_namespaced_role_works_as_documented(
    kubectl: Kubectl, installed: None, namespace: str
) -> None:
    """The recipe in operator-role.yaml: drop the cluster-wide secrets rule, grant `get` on named Secrets."""
    role = yaml.safe_load(kubectl("get", "clusterrole", "tempsweep-operator", "-o", "yaml").stdout)
    name = f"tempsweep-narrow-{namespace}"
    narrow = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": [rule for rule in role["rules"] if "secrets" not in rule["resources"]],
    }
    user = f"system:serviceaccount:{namespace}:narrow"
    kubectl("create", "serviceaccount", "narrow", namespace=namespace)
    kubectl("apply", "-f", "-", input=yaml.safe_dump(narrow))
    kubectl(
        "create",
        "clusterrolebinding",
        name,
        f"--clusterrole={name}",
        f"--serviceaccount={namespace}:narrow",
    )
    kubectl(
        "create",
        "role",
        "jobs-db-reader",
        "--verb=get",
        "--resource=secrets",
        "--resource-name=jobs-db",
        namespace=namespace,
    )
    kubectl(
        "create",
        "rolebinding",
        "jobs-db-reader",
        "--role=jobs-db-reader",
        f"--serviceaccount={namespace}:narrow",
        namespace=namespace,
    )
    try:
        wait_for("the narrowed role", lambda: can_i(kubectl, user, "get", "secrets/jobs-db", namespace=namespace))
        assert can_i(kubectl, user, "list", POLICIES, namespace=namespace)
        assert not can_i(kubectl, user, "get", "secrets/other", namespace=namespace)
        assert not can_i(kubectl, user, "get", "secrets/jobs-db", namespace="kube-system")
        assert not can_i(kubectl, user, "list", "secrets", namespace=namespace)
    finally:
        kubectl("delete", "clusterrolebinding,clusterrole", name, check=False)


# -- human roles aggregate into admin / edit / view ---------------------------------------------------


def test_viewers_read_policies_and_runs_but_change_nothing(kubectl: Kubectl, installed: None, namespace: str) -> None:
    kubectl("create", "rolebinding", "alice-view", "--clusterrole=view", "--user=alice", namespace=namespace)
    wait_for("the view binding", lambda: can_i(kubectl, "alice", "get", POLICIES, namespace=namespace))

    for verb in ("get", "list", "watch"):
        assert can_i(kubectl, "alice", verb, POLICIES, namespace=namespace)
        assert can_i(kubectl, "alice", verb, RUNS, namespace=namespace)
    for verb in ("create", "patch", "delete"):
        assert not can_i(kubectl, "alice", verb, POLICIES, namespace=namespace)
        assert not can_i(kubectl, "alice", verb, RUNS, namespace=namespace)
    assert not can_i(kubectl, "alice", "get", POLICIES, namespace="default")


def test_editors_start_runs_and_admins_delete_policies(kubectl: Kubectl, installed: None, namespace: str) -> None:
    kubectl("create", "rolebinding", "bob-edit", "--clusterrole=edit", "--user=bob", namespace=namespace)
    kubectl("create", "rolebinding", "carol-admin", "--clusterrole=admin", "--user=carol", namespace=namespace)
    wait_for("the edit binding", lambda: can_i(kubectl, "bob", "create", RUNS, namespace=namespace))
    wait_for("the admin binding", lambda: can_i(kubectl, "carol", "delete", POLICIES, namespace=namespace))

    assert can_i(kubectl, "bob", "create", RUNS, namespace=namespace)
    assert can_i(kubectl, "bob", "delete", RUNS, namespace=namespace)
    assert can_i(kubectl, "bob", "create", POLICIES, namespace=namespace)
    assert not can_i(kubectl, "bob", "delete", POLICIES, namespace=namespace)
    assert not can_i(kubectl, "bob", "patch", POLICIES, namespace=namespace, subresource="status")
    assert not can_i(kubectl, "carol", "patch", RUNS, namespace=namespace, subresource="status")
    assert not can_i(kubectl, "bob", "create", RUNS, namespace="default")


# -- sufficient: the operator with its ServiceAccount's token -------------------------------------


@pytest.fixture(scope="module")
def world(
    control_plane: ControlPlane, kubectl: Kubectl, installed: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    base = tmp_path_factory.mktemp("operator-as-service-account")
    root, outside = base / "volumes", base / "outside"
    for directory in (root / "a" / "heartbeat", root / "b", outside):
        directory.mkdir(parents=True)
    suffix = uuid.uuid4().hex[:8]
    a, b = f"sec-a-{suffix}", f"sec-b-{suffix}"
    for namespace in (a, b):
        kubectl("create", "namespace", namespace)
    kubeconfig = token_kubeconfig(control_plane, kubectl, base / "operator.kubeconfig")
    settings = {
        "TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS": str(root),
        "TEMP_STORAGE_CLEANUP_NAMESPACE_ROOTS": f"{b}={root / 'b'}",
        "TEMPSWEEP_TICK_SECONDS": "1",
        "TEMPSWEEP_TTL_CHECK_SECONDS": "1",
    }
    operator = OperatorProcess(
        namespaces=[a, b],
        env=isolated_env(kubeconfig, settings),
        log_path=base / "operator.log",
        cwd=base,  # a relative volume path would resolve here, next to the bait in ./outside
    )
    world = World(control_plane, kubectl, kubeconfig, operator, a, b, root, outside)
    world.apply(a, World.armed("heartbeat", root / "a" / "heartbeat"))
    operator.start()
    try:
        yield world
    finally:
        operator.stop()
        for namespace in (a, b):
            kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)


def test_the_token_authenticates_as_the_service_account(world: World) -> None:
    def as_operator(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(world.plane.kubectl_path), f"--kubeconfig={world.kubeconfig}", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    whoami = as_operator("auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == OPERATOR_USER
    assert as_operator("get", "cleanuppolicies", "-n", world.a, "-o", "name").returncode == 0
    denied = as_operator("get", "pods", "-n", world.a)
    assert denied.returncode != 0 and "Forbidden" in denied.stderr


def test_a_policy_becomes_ready_with_statistics(world: World) -> None:
    directory = world.root / "a" / "stats"
    make_files(directory, ["job_1_a.tmp", "job_1_b.tmp", "other.tmp"], size=100)
    world.apply(world.a, policy("stats", directory))

    ready = world.wait_condition(world.a, "stats", "True")
    status = world.status(world.a, "cleanuppolicy", "stats")

    assert ready["reason"] == "Validated"
    assert status["observedGeneration"] == 1
    assert status["tempFilesCount"] == 3
    assert status["tempFilesSizeBytes"] == 300
    assert status["health"] == "Healthy"
    assert "lastStatsTime" in status


def test_a_chunk_completion_run_deletes_exactly_its_files_and_posts_events(world: World) -> None:
    directory = world.root / "a" / "chunks"
    completed = ["job_1001_chunk_7_image1.jpg", "job_1001_chunk_7_image2.jpg"]
    kept = [
        "job_1001_chunk_7_image3.jpg",
        "job_1001_chunk_8_image1.jpg",
        "job_1002_chunk_7_image1.jpg",
        "job_10011_chunk_7_image1.jpg",
        "unrelated.tmp",
    ]
    make_files(directory, completed + kept)
    world.apply(world.a, policy("chunks", directory))
    world.wait_condition(world.a, "chunks", "True")

    world.apply(
        world.a,
        run(
            "chunk-1001-7",
            "chunks",
            "ChunkCompletion",
            jobId="1001",
            chunkId="7",
            completedFiles=["image1.jpg", "image2.jpg"],
        ),
    )
    status = world.wait_run(world.a, "chunk-1001-7")

    assert status["phase"] == "Succeeded", status
    assert status["filesDeleted"] == 2
    assert files(directory) == set(kept)
    events = world.events(world.a, "chunk-1001-7")
    assert [(e["type"], e["reason"]) for e in events] == [("Normal", "CleanupFinished")], events
    policy_status = world.status(world.a, "cleanuppolicy", "chunks")
    assert policy_status["lastCleanupPhase"] == "Succeeded"


def test_a_finished_run_is_deleted_after_its_ttl(world: World) -> None:
    directory = world.root / "a" / "ttl"
    directory.mkdir()
    world.apply(world.a, policy("ttl", directory))
    world.wait_condition(world.a, "ttl", "True")

    world.apply(world.a, run("short-lived", "ttl", "Orphaned", dryRun=True, ttlSecondsAfterFinished=1))

    wait_for(
        lambda: f"the run to be finished and deleted\n{world.tail()}",
        lambda: world.get(world.a, "cleanuprun", "short-lived") is None and world.events(world.a, "short-lived"),
    )
    assert [e["reason"] for e in world.events(world.a, "short-lived")] == ["CleanupFinished"]


# -- attacks ------------------------------------------------------------------------------------------


def test_a_run_cannot_use_a_policy_from_another_namespace(world: World) -> None:
    directory = world.root / "b" / "chunks"
    names = {"job_1001_chunk_7_image1.jpg", "job_1001_chunk_7_image2.jpg"}
    make_files(directory, names, age_hours=OLD_HOURS)
    world.apply(world.b, policy("b-only", directory))
    world.wait_condition(world.b, "b-only", "True")

    world.apply(world.a, run("steal", "b-only", "ChunkCompletion", jobId="1001", chunkId="7"))
    status = world.wait_run(world.a, "steal")

    assert status["phase"] == "Failed"
    assert status["conditions"][0]["reason"] == "PolicyNotFound"
    assert f"CleanupPolicy 'b-only' not found in namespace {world.a}" in status["message"]
    assert "a CleanupRun can only use a policy in its own namespace" in status["message"]
    assert [e["reason"] for e in world.events(world.a, "steal")] == ["PolicyNotFound"]
    assert "lastCleanupTime" not in world.status(world.b, "cleanuppolicy", "b-only")
    world.expect_survives(world.b, "b-only", directory, names)


def test_a_policy_cannot_clean_a_root_reserved_for_another_namespace(world: World) -> None:
    victims, control = world.root / "b" / "victims", world.root / "b" / "control"
    names = {"job_1_victim.tmp", "victim.tmp", "deep/victim.tmp"}
    make_files(victims, names, age_hours=OLD_HOURS, size=1000)
    make_files(control, names, age_hours=OLD_HOURS, size=1000)
    world.apply(world.a, World.armed("steal-root", victims))
    world.apply(world.b, World.armed("b-control", control))

    refused = world.wait_condition(world.a, "steal-root", "False")
    wait_for(lambda: f"the owner's armed policy to clean its own root\n{world.tail()}", lambda: not files(control))
    world.apply(world.a, run("steal-root-now", "steal-root", "Emergency"))
    status = world.wait_run(world.a, "steal-root-now")
    world.heartbeat()

    assert refused["reason"] == "PathNotAllowed"
    assert f"{victims} is under a root reserved for another namespace" in refused["message"]
    assert world.b not in refused["message"]
    assert (status["phase"], status["conditions"][0]["reason"]) == ("Failed", "PathNotAllowed")
    world.expect_survives(world.a, "steal-root", victims, names)


@pytest.mark.parametrize(
    ("path", "message"),
    [("{root}/a/../../outside/dotdot", "must not contain '..'"), ("outside/relative", "path must be absolute")],
    ids=["dotdot", "relative"],
)
def test_the_api_server_rejects_dotdot_and_relative_paths(world: World, path: str, message: str) -> None:
    name = path.rsplit("/", 1)[-1]
    bait, names = world.bait(name)

    result = world.apply(world.a, World.armed(f"path-{name}", path.format(root=world.root)), check=False)

    assert result.returncode != 0
    assert message in result.stderr
    assert world.get(world.a, "cleanuppolicy", f"path-{name}") is None
    assert files(bait) == names


@pytest.mark.parametrize("path", ["/", "/etc"], ids=["slash", "etc"])
def test_slash_and_system_paths_are_refused(world: World, path: str) -> None:
    """dryRun stays on here: were the refusal ever broken, this must not clean the test machine."""
    name = "system-" + (path.strip("/") or "slash")
    world.apply(world.a, policy(name, path, dryRun=True))

    refused = world.wait_condition(world.a, name, "False")
    world.apply(world.a, run(f"{name}-now", name, "Emergency", dryRun=True))
    status = world.wait_run(world.a, f"{name}-now")

    assert refused["reason"] == "InvalidSpec"
    assert f"'{path}' is a system path and is never cleaned" in refused["message"]
    assert (status["phase"], status["conditions"][0]["reason"]) == ("Failed", "InvalidSpec")
    assert status.get("filesScanned", 0) == 0


@pytest.mark.parametrize("through", [False, True], ids=["is-a-symlink", "passes-through-a-symlink"])
def test_a_volume_path_leading_through_a_symlink_is_refused(world: World, through: bool) -> None:
    name = "through-link" if through else "link"
    bait, names = world.bait(name)
    (world.root / "a" / name).symlink_to(bait, target_is_directory=True)
    path = world.root / "a" / name / "deep" if through else world.root / "a" / name
    world.apply(world.a, World.armed(name, path))

    world.apply(world.a, run(f"{name}-now", name, "Emergency"))
    status = world.wait_run(world.a, f"{name}-now")
    world.heartbeat()

    assert status["phase"] == "Failed"
    assert "symlink" in status["message"]
    ready = world.condition(world.a, "cleanuppolicy", name, "Ready")
    assert ready is None or ready["status"] == "False", ready
    # ticks=False: the storage error escapes policy_tick, so Kopf retries the timer only after 60 s
    world.expect_survives(world.a, name, bait, names, ticks=False)


def test_a_symlink_inside_the_root_is_not_followed(world: World) -> None:
    directory = world.root / "a" / "with-links"
    bait, names = world.bait("behind-links")
    make_files(directory, ["own.tmp", "sub/own.tmp"], age_hours=OLD_HOURS, size=1000)
    (directory / "sub" / "escape").symlink_to(bait, target_is_directory=True)
    (directory / "escape-file.tmp").symlink_to(bait / "victim.tmp")
    world.apply(world.a, World.armed("with-links", directory))

    wait_for(lambda: f"the policy to delete its own old files\n{world.tail()}", lambda: not files(directory))
    world.heartbeat()

    assert (directory / "sub" / "escape").is_symlink() and (directory / "escape-file.tmp").is_symlink()
    world.expect_survives(world.a, "with-links", bait, names)


@pytest.mark.parametrize("kind", ["tmpfs", "bind"])
def test_a_mount_point_inside_the_root_is_not_crossed(world: World, kind: str) -> None:
    directory = world.root / "a" / f"with-{kind}"
    make_files(directory, ["own.tmp", "sub/own.tmp"], age_hours=OLD_HOURS, size=1000)
    with Mounts() as mounts:
        if kind == "tmpfs":
            mounted = mounts.tmpfs(directory / "sub" / "mnt")
            names = {"victim.tmp", "deep/victim.tmp"}
            make_files(mounted, names, age_hours=OLD_HOURS, size=1000)
        else:
            bait, names = world.bait(f"bound-{kind}")
            mounted = mounts.bind(bait, directory / "sub" / "mnt")
        world.apply(world.a, World.armed(f"with-{kind}", directory))

        wait_for(
            lambda: f"the policy to delete its own old files\n{world.tail()}",
            lambda: files(directory) == {f"sub/mnt/{n}" for n in names},
        )
        world.heartbeat()

        assert files(mounted) == names
        world.kubectl("delete", "cleanuppolicy", f"with-{kind}", namespace=world.a)  # before the unmount


def test_the_database_password_never_shows(world: World) -> None:
    directory = world.root / "a" / "secret"
    make_files(directory, ["job_1001_chunk_7_image1.jpg"])
    world.kubectl("create", "secret", "generic", "jobs-db", f"--from-literal=url={CANARY_URL}", namespace=world.a)
    world.apply(
        world.a,
        policy("with-secret", directory, jobs={"database": {"urlSecretRef": {"name": "jobs-db", "key": "url"}}}),
    )

    world.wait_condition(world.a, "with-secret", "True")
    unreachable = wait_for(
        "JobSourceReachable=False",
        lambda: (
            c
            if (c := world.condition(world.a, "cleanuppolicy", "with-secret", "JobSourceReachable"))
            and c["status"] == "False"
            else None
        ),
    )
    world.apply(world.a, run("with-secret-now", "with-secret", "ChunkCompletion", jobId="1001", chunkId="7"))
    world.wait_run(world.a, "with-secret-now")

    assert unreachable["message"]
    shown = {
        "policy": world.kubectl("get", "cleanuppolicy", "with-secret", "-o", "yaml", namespace=world.a).stdout,
        "run": world.kubectl("get", "cleanuprun", "with-secret-now", "-o", "yaml", namespace=world.a).stdout,
        "events": world.kubectl("get", "events", "-o", "yaml", namespace=world.a).stdout,
        "operator log": world.operator.log(),
    }
    forms = [CANARY, base64.b64encode(CANARY_URL.encode()).decode(), base64.b64encode(CANARY.encode()).decode()]
    for where, text in shown.items():
        for form in forms:
            assert form not in text, f"the secret shows in the {where}"


def test_no_forbidden_in_the_log_and_every_attack_held(world: World) -> None:
    """Last: the role sufficed for everything above, and each attacked policy's timer ticked over its bait."""
    assert world.attacks, "run the whole module: the attack tests register their bait here"
    deadline = max(a.created for a in world.attacks)

    def ticked() -> bool:
        report = (world.operator.probe() or {}).get("policies", {})
        for attack in (a for a in world.attacks if a.ticks):
            tick = report.get(f"{attack.namespace}/{attack.policy}", {}).get("tick")
            if tick is None or (datetime.fromisoformat(tick) - deadline).total_seconds() < 2:
                return False
        return True

    wait_for("every attacked policy's timer to tick after the attack", ticked, timeout=30)
    for attack in world.attacks:
        assert files(attack.bait) == attack.files, f"{attack.namespace}/{attack.policy} reached its bait"
    log = world.operator.log()
    for sign in ("forbidden", "'code': 403", "(403)", "403 forbidden"):
        assert sign not in log.lower(), f"{sign!r} in the operator log\n{world.tail(80)}"
    assert world.operator.healthy()
