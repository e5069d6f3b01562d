"""Opening directories by descriptor, never by path string: no symlink followed, no mount entered.

``open_subdirectory`` opens one name relative to its parent's descriptor with ``O_NOFOLLOW`` and
refuses a directory on another filesystem or another mount of the same one (a bind mount has the
same ``st_dev``, so the mount id in ``/proc/self/fdinfo`` tells it apart). ``PathCursor`` keeps the
descriptors of the directories from the root down to the one in use, each locked with ``flock``,
and moves between neighbouring paths by closing and opening only the components that differ, so a
batch of deletions opens each directory once instead of walking again from the root per directory.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from tempsweep.storage.locking import LockTable

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def mount_id(fd: int) -> int | None:
    """The id of the mount ``fd`` is on, or None where /proc does not say (then st_dev alone decides)."""
    try:
        with open(f"/proc/self/fdinfo/{fd}", "rb") as handle:
            for line in handle:
                if line.startswith(b"mnt_id:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass(frozen=True, slots=True)
class RootIds:
    """What every directory below the root must share with it: the device and the mount."""

    dev: int
    mount: int | None

    @classmethod
    def of(cls, fd: int) -> RootIds:
        return cls(os.fstat(fd).st_dev, mount_id(fd))


def open_directory(name: str, dir_fd: int) -> int:
    """Open the directory ``name`` in ``dir_fd`` without following it; a symlink is ELOOP."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except NotADirectoryError:  # what O_DIRECTORY | O_NOFOLLOW says about a symlink
        if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            raise OSError(errno.ELOOP, "a symlink") from None
        raise


def open_without_symlinks(path: str) -> int:
    """Open the absolute directory ``path`` one component at a time from ``/``, following no symlink."""
    fd = os.open("/", DIR_FLAGS)
    try:
        for part in path.split("/"):
            if part:
                next_fd = open_directory(part, fd)
                os.close(fd)
                fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_same_mount(fd: int, root: RootIds) -> None:
    """EXDEV unless ``fd`` is on the root's filesystem and mount (a mount point is never entered)."""
    if os.fstat(fd).st_dev != root.dev:
        raise OSError(errno.EXDEV, "on another filesystem")
    if root.mount is not None and mount_id(fd) != root.mount:
        raise OSError(errno.EXDEV, "a mount point")


def open_subdirectory(name: str, dir_fd: int, root: RootIds) -> int:
    """``open_directory`` that also refuses mount points."""
    fd = open_directory(name, dir_fd)
    try:
        check_same_mount(fd, root)
    except BaseException:
        os.close(fd)
        raise
    return fd


class PathCursor:
    """Locked descriptors from the root down to one directory, reused between neighbouring paths.

    ``goto`` raises OSError (ENOENT, ELOOP, EXDEV, ...) when a component cannot be opened safely
    and ``InUse`` when another process holds a lock on one of them; the cursor then stays at the
    deepest component it could reach. Close it to drop every lock.
    """

    def __init__(self, root_fd: int, root: RootIds, locks: LockTable) -> None:
        self._root_fd = root_fd
        self._root = root
        self._locks = locks
        self._names: list[str] = []
        self._fds: list[int] = []
        self._keys: list[tuple[int, int]] = []

    def goto(self, parts: Sequence[str]) -> int:
        wanted = list(parts)
        common = self._common_prefix(wanted)
        self._pop_to(common)
        for part in parts[common:]:
            parent = self._fds[-1] if self._fds else self._root_fd
            fd = open_subdirectory(part, parent, self._root)
            try:
                key = self._locks.acquire(fd)
            except BaseException:
                os.close(fd)
                raise
            self._names.append(part)
            self._fds.append(fd)
            self._keys.append(key)
        return self._fds[-1] if self._fds else self._root_fd

    def _common_prefix(self, wanted: list[str]) -> int:
        """How many leading components ``wanted`` shares with the cursor: list slices compare in C, and
        a binary search keeps a move between two deep neighbours from costing a Python loop per level."""
        names = self._names
        high = min(len(wanted), len(names))
        if wanted[:high] == names[:high]:
            return high  # the usual case: the same directory, or one below it
        low = 0  # wanted[:low] == names[:low] holds; wanted[:high] == names[:high] does not
        while high - low > 1:
            middle = (low + high) // 2
            if wanted[:middle] == names[:middle]:
                low = middle
            else:
                high = middle
        return low

    def _pop_to(self, depth: int) -> None:
        while len(self._fds) > depth:
            self._names.pop()
            os.close(self._fds.pop())
            self._locks.release(self._keys.pop())

    def close(self) -> None:
        self._pop_to(0)
