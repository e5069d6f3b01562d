"""A real Prometheus scrapes the operator, running as a real process against the real control plane.

Prometheus (built by ``make prometheus``) scrapes the operator's ``/metrics`` every second under the job
name the shipped ServiceMonitor gives it, with the alert rules of manifests/monitoring's PrometheusRule
loaded and evaluated every second. A volume is filled step by step; the test asks Prometheus's HTTP API,
as a dashboard or an alert would, until usage, health, deleted files and freed bytes by reason and run
outcomes show what happened. Then every PromQL expression of the shipped dashboard must return data.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.operator_helpers import make_files, policy, run
from support.dashboard import queries
from support.operator_process import Kube, StartOperator, wait_for
from support.prometheus_server import PrometheusServer, StartPrometheus

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
RULE = REPO / "manifests" / "monitoring" / "prometheusrule.yaml"
#: The job name Prometheus gives the operator's target through the shipped Service and ServiceMonitor
#: (TempsweepOperatorDown asks for it).
JOB = "tempsweep-operator-metrics"
KIB = 1024
#: Dashboard queries that only return data while the operator predicts a fill: they are evaluated by
#: ``test_filling_up_fires_and_the_prediction_panels_have_data``, where the volume fills at a steady rate.
PREDICTION_METRICS = (
    "tempsweep_storage_predicted_emergency_seconds",
    "tempsweep_storage_predicted_full_seconds",
    "tempsweep_storage_fill_rate_bytes_per_second",
)


def shipped_rules() -> dict[str, Any]:
    """The PrometheusRule's spec: a plain Prometheus rule file."""
    spec: dict[str, Any] = yaml.safe_load(RULE.read_text())["spec"]
    return spec


def alerts_for(prometheus: PrometheusServer, namespace: str) -> dict[str, str]:
    """alertname -> state (pending, firing) of the alerts about the test's namespace."""
    alerts = prometheus.alerts()
    return {a["labels"]["alertname"]: a["state"] for a in alerts if a["labels"].get("namespace") == namespace}


def test_prometheus_sees_a_volume_fill_up_and_get_cleaned(
    kube: Kube, start_operator: StartOperator, start_prometheus: StartPrometheus, namespace: str,
    operator_root: Path,
) -> None:
    operator = start_operator(namespace)
    prometheus = start_prometheus([f"127.0.0.1:{operator.metrics_port}"], rules=shipped_rules(), job=JOB)
    volume = operator_root / "vol"
    volume.mkdir()
    kube.apply(policy(
        "watched", volume,
        storage={"volume": {"path": str(volume), "capacity": "100Ki"}},
        thresholds={"warningPercent": 50, "emergencyPercent": 80, "emergencyBufferPercent": 10},
        schedule={"statsInterval": "1s", "emergencyCheckInterval": "1s"},
    ))
    mine = f'namespace="{namespace}", policy="watched"'

    def gauge(name: str, extra: str = "") -> str:
        return f"{name}{{{mine}{', ' + extra if extra else ''}}}"

    # 1. 20 KiB of fresh files: 20 % used, healthy
    make_files(volume / "fresh", [f"a{i}.tmp" for i in range(20)], size=KIB)
    prometheus.wait_value(gauge("tempsweep_storage_used_bytes"), lambda v: v == 20 * KIB, "20 KiB used")
    assert prometheus.value(gauge("tempsweep_storage_capacity_bytes")) == 100 * KIB
    assert prometheus.value(gauge("tempsweep_storage_health", 'state="Healthy"')) == 1
    assert prometheus.value(gauge("tempsweep_storage_warning_threshold_ratio")) == 0.5

    # 2. 40 KiB more: 60 %, past the warning threshold; the Warning alert's expression holds (pending: its
    # 15 minutes have not passed)
    make_files(volume / "fresh", [f"b{i}.tmp" for i in range(40)], size=KIB)
    prometheus.wait_value(gauge("tempsweep_storage_usage_ratio"), lambda v: v == 0.6, "usage 60 %")
    prometheus.wait_value(gauge("tempsweep_storage_health", 'state="Warning"'), lambda v: v == 1, "health Warning")
    wait_for("TempsweepStorageWarning pending for the policy",
             lambda: alerts_for(prometheus, namespace).get("TempsweepStorageWarning") == "pending")

    # 3. ten forgotten files two days old, and an Orphaned run: deleted files and freed bytes by reason
    # (Expired: the policy has no job table, so age alone decides, as tmpreaper does)
    make_files(volume / "forgotten", [f"c{i}.tmp" for i in range(10)], size=KIB, age_hours=48)
    kube.apply(run("orphans", "watched", "Orphaned"))
    assert kube.wait_run("orphans")["phase"] == "Succeeded"
    prometheus.wait_value(gauge("tempsweep_cleanup_runs_total", 'type="Orphaned", phase="Succeeded"'),
                          lambda v: v == 1, "one successful Orphaned run")
    assert prometheus.value(gauge("tempsweep_cleanup_files_deleted_total", 'reason="Expired"')) == 10
    assert prometheus.value(gauge("tempsweep_cleanup_freed_bytes_total", 'reason="Expired"')) == 10 * KIB
    assert prometheus.value(gauge("tempsweep_cleanup_runs_total", 'type="Orphaned", phase="Failed"')) == 0
    assert prometheus.value(gauge("tempsweep_cleanup_seconds_total", 'type="Orphaned"')) > 0
    assert prometheus.value('tempsweep_cleanup_duration_seconds_count{type="Orphaned"}') == 1

    # 4. 25 KiB of files two hours old push usage to 85 %, past the emergency threshold (80 %): the
    # emergency check deletes emergency orphans until usage is below 70 %
    make_files(volume / "burst", [f"d{i}.tmp" for i in range(25)], size=KIB, age_hours=2)
    prometheus.wait_value(gauge("tempsweep_cleanup_runs_total", 'type="Emergency", phase="Succeeded"'),
                          lambda v: v >= 1, "an emergency cleanup")
    freed = prometheus.wait_value(gauge("tempsweep_cleanup_freed_bytes_total", 'reason="EmergencyOrphan"'),
                                  lambda v: v >= 15 * KIB, "at least 15 KiB freed as emergency orphans")
    usage = prometheus.wait_value(gauge("tempsweep_storage_usage_ratio"), lambda v: v < 0.7, "usage below 70 %")
    assert usage == pytest.approx((85 * KIB - freed) / (100 * KIB))
    assert prometheus.value(f'sum(tempsweep_cleanup_freed_bytes_total{{{mine}}})') == 10 * KIB + freed

    # 5. every dashboard query returns data from this Prometheus (the prediction panels: see below)
    empty = [q for q in queries() if not any(m in q for m in PREDICTION_METRICS) and not prometheus.query(q)]
    assert empty == [], "dashboard queries without data"

    # 6. every shipped alert is loaded and evaluates without error; the operator is up
    rules = {rule["name"]: rule for rule in prometheus.rules() if rule["type"] == "alerting"}
    assert set(rules) == {r["alert"] for g in shipped_rules()["groups"] for r in g["rules"]}
    assert {name: rule["health"] for name, rule in rules.items()} == dict.fromkeys(rules, "ok")
    assert prometheus.value(f'up{{job="{JOB}"}}') == 1
    assert "TempsweepOperatorDown" not in {a["labels"]["alertname"] for a in prometheus.alerts()}
    assert prometheus.query(f'process_cpu_seconds_total{{job="{JOB}"}}'), "the process collector is served"

    # 7. a deleted policy's series leave the scrape (Prometheus marks them stale at once)
    kube("delete", "cleanuppolicy", "watched")
    wait_for("the policy's series to leave the scrape",
             lambda: prometheus.query(f"tempsweep_storage_usage_ratio{{{mine}}}") == [])
    assert prometheus.query(f"tempsweep_cleanup_runs_total{{{mine}}}") == []


def _operator_predicts() -> bool:
    """Whether this build feeds status.prediction from the statistics (the predict branch's foresight model)."""
    return importlib.util.find_spec("tempsweep.models.foresight") is not None


def rules_with_short_filling_up(horizon_seconds: int) -> dict[str, Any]:
    """The shipped rules, with TempsweepStorageFillingUp's 6-hour horizon and 30-minute ``for`` made short."""
    rules = shipped_rules()
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "TempsweepStorageFillingUp":
                assert "6 * 3600" in rule["expr"], rule["expr"]
                rule["expr"] = rule["expr"].replace("6 * 3600", str(horizon_seconds))
                rule["for"] = "0s"
    return rules


@pytest.mark.skipif(not _operator_predicts(), reason="the operator does not predict yet (status.prediction and "
                    "observe_prediction come with the predict branch)")
def test_filling_up_fires_and_the_prediction_panels_have_data(
    kube: Kube, start_operator: StartOperator, start_prometheus: StartPrometheus, namespace: str,
    operator_root: Path,
) -> None:
    """A volume filling at a steady rate: the operator predicts the emergency threshold within the alert's
    (shortened) horizon, TempsweepStorageFillingUp fires, and the dashboard's prediction panels have data."""
    operator = start_operator(namespace, TEMPSWEEP_PREDICTION_MIN_SPAN_SECONDS="5")
    prometheus = start_prometheus([f"127.0.0.1:{operator.metrics_port}"], rules=rules_with_short_filling_up(600),
                                  job=JOB)
    volume = operator_root / "vol"
    volume.mkdir()
    kube.apply(policy(
        "filling", volume,
        storage={"volume": {"path": str(volume), "capacity": "200Ki"}},
        thresholds={"warningPercent": 70, "emergencyPercent": 90},
        schedule={"statsInterval": "1s", "emergencyCheckInterval": "1h"},
    ))
    mine = f'namespace="{namespace}", policy="filling"'
    stop = threading.Event()

    def fill() -> None:  # 2 KiB every half second (4 KiB/s) until 60 % of the capacity: far from the emergency
        for index in range(60):
            if stop.wait(0.5):
                return
            make_files(volume, [f"f{index:03d}.tmp"], size=2 * KIB)

    filler = threading.Thread(target=fill, daemon=True)
    filler.start()
    try:
        wait_for("TempsweepStorageFillingUp firing for the policy",
                 lambda: alerts_for(prometheus, namespace).get("TempsweepStorageFillingUp") == "firing", timeout=60)
    finally:
        stop.set()
        filler.join(timeout=5)
    seconds = prometheus.value(f"tempsweep_storage_predicted_emergency_seconds{{{mine}}}")
    assert seconds is not None and 0 < seconds < 600
    assert (prometheus.value(f"tempsweep_storage_fill_rate_bytes_per_second{{{mine}}}") or 0) > 0
    predicted = [q for q in queries() if any(m in q for m in PREDICTION_METRICS)]
    assert len(predicted) == 3
    assert [q for q in predicted if not prometheus.query(q)] == [], "prediction panels without data"
