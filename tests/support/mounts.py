"""Real mounts for the tests that prove a cleanup never crosses a mount point.

    with Mounts() as mounts:
        mounts.tmpfs(target)             a small tmpfs on TARGET
        mounts.bind(source, target)      SOURCE bind-mounted on TARGET (same filesystem, same st_dev)

Everything mounted is unmounted on exit (lazily if busy). Where this process may not mount (no
CAP_SYS_ADMIN, no mount command) the test is skipped with the reason; nothing else is skipped.
``Mounts(required=True)`` fails instead where the tmpfs is the point of the test and the process is root
or in CI (``CI=true``), so a machine that should mount cannot quietly skip it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from types import TracebackType
from typing import NoReturn

import pytest


class Mounts:
    def __init__(self, *, required: bool = False) -> None:
        self.mounted: list[Path] = []
        self.required = required and (os.geteuid() == 0 or os.environ.get("CI") == "true")

    def __enter__(self) -> Mounts:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.unmount_all()

    def tmpfs(self, target: Path, size: str = "4m") -> Path:
        return self._mount(target, ["-t", "tmpfs", "-o", f"size={size}", "tempsweep-test"])

    def bind(self, source: Path, target: Path) -> Path:
        return self._mount(target, ["--bind", str(source)])

    def _mount(self, target: Path, args: list[str]) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        try:
            result = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True, timeout=30)
        except FileNotFoundError:
            self._cannot("mount is not permitted here: no mount command")
        if result.returncode != 0:
            self._cannot(f"mount is not permitted here: {result.stderr.strip() or f'exit {result.returncode}'}")
        self.mounted.append(target)
        return target

    def _cannot(self, reason: str) -> NoReturn:
        if self.required:
            pytest.fail(f"{reason} (root or CI: this test must run)")
        pytest.skip(reason)

    def unmount_all(self) -> None:
        while self.mounted:
            target = self.mounted.pop()
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                if subprocess.run(["umount", str(target)], capture_output=True, timeout=30).returncode != 0:
                    subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30)
