"""A child process that holds a BSD ``flock`` on a file or directory until told to let go.

The lock must belong to another process, as an application's would: tempsweep sees it only as
"someone else holds a lock". The child prints one line once it holds the lock, so tests wait for
that line instead of sleeping.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import TracebackType

_HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_SH if sys.argv[2] == "shared" else fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


class HeldLock:
    """``with HeldLock(path):`` another process holds a flock on ``path`` inside the block."""

    def __init__(self, path: Path, *, shared: bool = False) -> None:
        self.path = path
        self._mode = "shared" if shared else "exclusive"
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> HeldLock:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(self.path), self._mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()  # blocks until the child holds the lock (or died)
        if line.strip() != "locked":
            self.release()
            raise RuntimeError(f"the lock holder for {self.path} did not start")
        return self

    def release(self) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            self._process.wait(timeout=30)
            self._process.stdout.close() if self._process.stdout else None
            self._process = None

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()
