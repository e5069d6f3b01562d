"""JSON log lines: one object per record, with namespace, policy, run and reason where known."""

from __future__ import annotations

import json
import logging

from tempsweep.telemetry.jsonlog import ContextFields, JsonFormatter


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("kopf.objects", logging.WARNING, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_an_operator_line_about_a_policy_names_it() -> None:
    ref = {"apiVersion": "tempsweep.io/v1alpha1", "kind": "CleanupPolicy", "name": "scratch", "namespace": "team-a"}

    line = JsonFormatter().format(_record("Storage is Critical", k8s_ref=ref, reason="EmergencyCleanup"))

    assert "\n" not in line
    assert json.loads(line) | {"time": None} == {
        "time": None, "level": "WARNING", "logger": "kopf.objects", "message": "Storage is Critical",
        "namespace": "team-a", "policy": "scratch", "reason": "EmergencyCleanup",
    }


def test_a_line_about_a_run_names_the_run_and_context_fields_fill_gaps() -> None:
    ref = {"kind": "CleanupRun", "name": "nightly-1", "namespace": "team-a"}
    record = _record("multi\nline", k8s_ref=ref)
    ContextFields(policy="scratch", run="ignored-because-set", other="dropped").filter(record)

    parsed = json.loads(JsonFormatter().format(record))

    assert parsed["run"] == "nightly-1"
    assert parsed["policy"] == "scratch"
    assert parsed["message"] == "multi\nline"
    assert "other" not in parsed


def test_a_file_name_that_is_not_utf8_or_holds_line_separators_stays_one_line() -> None:
    name = "job\u2028forged\x85line-\udcff.tmp"  # \udcff: the byte 0xff of a name that is not UTF-8
    record = _record("deleted", tempsweep_fields={"path": name})

    line = JsonFormatter().format(record)

    assert len(line.encode("utf-8").decode("utf-8").splitlines()) == 1
    assert json.loads(line)["path"] == name
