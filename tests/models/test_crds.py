"""The CRDs in crds/ are what the models generate (unit tier: no cluster needed to notice drift)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_crds_match_the_models(tmp_path: Path) -> None:
    tempsweep = [sys.executable, "-m", "tempsweep.cli", "crds", "--check", "--output"]
    ok = subprocess.run([*tempsweep, str(REPO / "crds")], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert ok.returncode == 0, ok.stderr

    copy = tmp_path / "crds"
    shutil.copytree(REPO / "crds", copy)
    target = copy / "tempsweep.io_cleanupruns.yaml"
    target.write_text(target.read_text().replace("- Scheduled\n", "- Scheduled\n                - Everything\n", 1))
    drifted = subprocess.run([*tempsweep, str(copy)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert drifted.returncode == 1
    assert "tempsweep.io_cleanupruns.yaml differ from the models" in drifted.stderr
    assert "tempsweep.io_cleanuppolicies.yaml" not in drifted.stderr
