"""Removing a chain of nested ``d`` directories (with ``f`` files) of any depth.

Python's ``shutil.rmtree`` recurses once per level and fails on chains thousands deep, so the deep-tree
tests and the deep-chain benchmark remove theirs through directory descriptors instead.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def remove_chain(top: Path) -> None:
    """Remove a chain of 'd' directories (and 'f' files) of any depth below ``top``, through descriptors."""
    fds = [os.open(top, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        while True:
            with contextlib.suppress(FileNotFoundError):
                os.unlink("f", dir_fd=fds[-1])
            try:
                fds.append(os.open("d", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fds[-1]))
            except FileNotFoundError:
                break
        while len(fds) > 1:
            os.close(fds.pop())
            os.rmdir("d", dir_fd=fds[-1])
    finally:
        for fd in fds:
            os.close(fd)
