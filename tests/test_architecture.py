"""The import-linter contracts in pyproject.toml hold: layers point one way, no I/O framework in the engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    assert lint_imports.exists(), "import-linter is part of the test extra"

    finished = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=240, check=False
    )

    report = finished.stdout + finished.stderr
    assert finished.returncode == 0, report
    assert "0 broken" in report
