"""Real mounts for the tests that prove a cleanup never crosses a mount point.

    with Mounts() as mounts:
        mounts.tmpfs(target)             a small tmpfs on TARGET
        mounts.bind(source, target)      SOURCE bind-mounted on TARGET (same filesystem, same st_dev)

Everything mounted is unmounted on exit (lazily if busy). Where this process may not mount (no
CAP_SYS_ADMIN, no mount command) the test is skipped with the reason; nothing else is skipped.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from types import TracebackType

import pytest


class Mounts:
    def __init__(self) -> None:
        self.mounted: list[Path] = []

    def __enter__(self) -> Mounts:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.unmount_all()

    def tmpfs(self, target: Path) -> Path:
        return self._mount(target, ["-t", "tmpfs", "-o", "size=4m", "tempsweep-test"])

    def bind(self, source: Path, target: Path) -> Path:
        return self._mount(target, ["--bind", str(source)])

    def _mount(self, target: Path, args: list[str]) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        try:
            result = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True, timeout=30)
        except FileNotFoundError:
            pytest.skip("mount is not permitted here: no mount command")
        if result.returncode != 0:
            pytest.skip(f"mount is not permitted here: {result.stderr.strip() or f'exit {result.returncode}'}")
        self.mounted.append(target)
        return target

    def unmount_all(self) -> None:
        while self.mounted:
            target = self.mounted.pop()
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                if subprocess.run(["umount", str(target)], capture_output=True, timeout=30).returncode != 0:
                    subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30)
