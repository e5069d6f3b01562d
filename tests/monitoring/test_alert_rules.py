"""The shipped alerts, checked and unit-tested by the real promtool (built by tests/prometheus/build.sh).

The PrometheusRule's ``spec`` is a plain Prometheus rule file; it is written out and given to
``promtool check rules`` and ``promtool test rules`` with alerts_test.yaml, which covers every alert:
fires when it should, quiet when it should not, and no flapping around a threshold.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.components import missing_component

REPO = Path(__file__).resolve().parents[2]
RULE = REPO / "manifests" / "monitoring" / "prometheusrule.yaml"
TESTS = Path(__file__).with_name("alerts_test.yaml")
PROMTOOL = REPO / ".local" / "bin" / "promtool"
LABEL = re.compile(r"\{\{ \$labels\.(\w+) \}\}")


@pytest.fixture(scope="module")
def promtool() -> Path:
    if not PROMTOOL.is_file():
        missing_component("promtool", "run `make prometheus` (builds it from the upstream Go module)")
    return PROMTOOL


def _rules() -> dict[str, Any]:
    return yaml.safe_load(RULE.read_text())["spec"]


def _alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in _rules()["groups"] for rule in group["rules"] if "alert" in rule}


def _render(template: str, labels: dict[str, str]) -> str:
    return LABEL.sub(lambda m: labels[m.group(1)], template)


def _with_annotations(tests: dict[str, Any]) -> dict[str, Any]:
    """Each expected alert gets its rule's annotations rendered with the alert's labels."""
    alerts = _alerts()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            rule = alerts[check["alertname"]]
            for expected in check.get("exp_alerts") or []:
                labels = {**expected["exp_labels"], "alertname": check["alertname"]}
                expected["exp_annotations"] = {k: _render(v, labels) for k, v in rule["annotations"].items()}
    return tests


def _write(tmp_path: Path) -> Path:
    (tmp_path / "tempsweep-rules.yaml").write_text(yaml.safe_dump(_rules(), sort_keys=False))
    tests = tmp_path / "alerts_test.yaml"
    tests.write_text(yaml.safe_dump(_with_annotations(yaml.safe_load(TESTS.read_text())), sort_keys=False))
    return tests


def test_promtool_accepts_the_rules(promtool: Path, tmp_path: Path) -> None:
    _write(tmp_path)

    result = subprocess.run([str(promtool), "check", "rules", str(tmp_path / "tempsweep-rules.yaml")],
                            capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout + result.stderr


def test_every_alert_passes_its_promtool_unit_tests(promtool: Path, tmp_path: Path) -> None:
    tests = _write(tmp_path)

    result = subprocess.run([str(promtool), "test", "rules", str(tests)],
                            capture_output=True, text=True, check=False, cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_is_unit_tested_both_ways_and_has_a_runbook() -> None:
    cases = yaml.safe_load(TESTS.read_text())["tests"]
    checks = [check for case in cases for check in case["alert_rule_test"]]
    for name, rule in _alerts().items():
        assert any(c["alertname"] == name and c.get("exp_alerts") for c in checks), f"{name} never fires in a test"
        assert any(c["alertname"] == name and not c.get("exp_alerts") for c in checks), f"{name} never quiet"
        assert {"summary", "description", "runbook"} <= rule["annotations"].keys(), name
        assert rule["labels"]["severity"] in {"warning", "critical"}, name


def test_a_broken_expectation_fails(promtool: Path, tmp_path: Path) -> None:
    """The control: promtool really compares (an alert expected at the wrong time is reported)."""
    tests = _write(tmp_path)
    broken = yaml.safe_load(tests.read_text())
    broken["tests"] = [broken["tests"][0]]
    broken["tests"][0]["alert_rule_test"][0]["exp_alerts"] = [{"exp_labels": {"severity": "warning"}}]
    tests.write_text(yaml.safe_dump(broken))

    result = subprocess.run([str(promtool), "test", "rules", str(tests)],
                            capture_output=True, text=True, check=False, cwd=tmp_path)

    assert result.returncode != 0
    assert "TempsweepStorageWarning" in result.stdout + result.stderr
