"""The volume scan: a depth-first walk in time linear in the tree, with a bounded number of descriptors.

Each directory is opened once, relative to its parent's descriptor (``openat`` with
``O_NOFOLLOW | O_DIRECTORY``), listed completely, and its subdirectories are entered one after the
other. A directory's descriptor stays open only while it still has subdirectories to enter; when more
than ``MAX_OPEN`` are open the shallowest are closed, and reopened through the returning child's
``..``, which must be the very directory (device and inode) that was closed, else the rest of that
directory is reported and not scanned. So the walk holds at most ``MAX_OPEN + 1`` descriptors and
never goes back to the root, whatever the depth (it used to reopen every directory from the root:
time grew with the square of the depth).

Limits (deeper or longer paths are reported as an error for that subtree: not scanned, so nothing in
it is deleted): ``MAX_DEPTH`` directories below the root and ``MAX_PATH_CHARS`` characters of
relative path. Both bound memory, which grows with the depth, not the size of the tree.

Like systemd-tmpfiles, a directory on which another process holds a ``flock`` is not entered
(``in_use``); mount points (another device, or a bind mount of the same one), symlinks, sockets,
fifos and devices are never entered or listed as files. Directories listed completely are recorded
(``directories``, at most ``MAX_TRACKED`` of them) so emptied ones can be removed afterwards.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from tempsweep.engine.ports import DirectoryEntry, FileEntry
from tempsweep.storage.dirfds import DIR_FLAGS, RootIds, check_same_mount, open_subdirectory
from tempsweep.storage.locking import LockTable

log = logging.getLogger(__name__)

MAX_DEPTH = 4096
MAX_PATH_CHARS = 16384
MAX_OPEN = 64
MAX_TRACKED = 200_000


def _short(path: str) -> str:
    """A path short enough for a status message (a run lists up to 50 errors)."""
    return path if len(path) <= 200 else f"{path[:120]}...({len(path)} characters)...{path[-60:]}"


@dataclass(slots=True)
class _Frame:
    path: str
    fd: int | None
    identity: tuple[int, int]
    depth: int
    subdirs: list[tuple[str, int]] = field(default_factory=list)  # (name, inode) still to enter


class Walk:
    """One scan of the tree below ``root_fd``; iterate ``files()`` once, then read what it recorded."""

    def __init__(
        self,
        root_fd: int,
        locks: LockTable,
        note: Callable[[str], None],
        prune: Callable[[str], bool] | None = None,
    ) -> None:
        self._root_fd = root_fd
        self._root = RootIds.of(root_fd)
        self._locks = locks
        self._note = note
        self._prune = prune
        self.directories: list[DirectoryEntry] = []
        self.in_use: list[str] = []
        self.truncated = False  # more directories than MAX_TRACKED: the rest are kept
        self._open: list[_Frame] = []  # frames holding a descriptor, shallowest first

    def files(self) -> Iterator[FileEntry]:
        root_info = os.fstat(self._root_fd)
        stack = [_Frame("", os.dup(self._root_fd), (root_info.st_dev, root_info.st_ino), 0)]
        self._open.append(stack[0])
        try:
            yield from self._list(stack[0], record=False)
            while stack:
                top = stack[-1]
                if not top.subdirs:
                    stack.pop()
                    self._leave(top, stack[-1] if stack else None)
                    continue
                name, inode = top.subdirs.pop()
                child = self._enter(top, name, inode)
                if child is not None:
                    stack.append(child)
                    yield from self._list(child, record=True)
        finally:
            for frame in self._open:
                if frame.fd is not None:
                    os.close(frame.fd)
            self._open.clear()

    # -- descriptors ------------------------------------------------------------------------------

    def _enter(self, parent: _Frame, name: str, inode: int) -> _Frame | None:
        path = f"{parent.path}/{name}" if parent.path else name
        if parent.depth + 1 > MAX_DEPTH or len(path) > MAX_PATH_CHARS:
            self._note(
                f"{_short(path)}/: deeper than {MAX_DEPTH} directories or {MAX_PATH_CHARS} characters: not scanned"
            )
            return None
        if self._prune is not None and self._prune(path):
            return None  # excluded: protected with everything below it, not even listed
        assert parent.fd is not None  # the top of the stack always has one (see _leave)
        try:
            fd = open_subdirectory(name, parent.fd, self._root)
        except FileNotFoundError:
            return None  # removed while we were scanning
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                log.info("%s/: a mount point, not entered", path)
            else:
                self._note(f"{path}/: skipped: {exc.strerror or exc}")
            return None
        try:
            info = os.fstat(fd)
            if info.st_ino != inode:  # replaced since it was listed: like one removed, left for the next run
                log.info("%s/: replaced while the scan was under way, not entered", path)
                os.close(fd)
                return None
            if not self._locks.probe(fd):
                self.in_use.append(path)
                log.info("%s/: locked by another process, not entered", path)
                os.close(fd)
                return None
        except OSError as exc:
            os.close(fd)
            self._note(f"{path}/: skipped: {exc.strerror or exc}")
            return None
        frame = _Frame(path, fd, (info.st_dev, info.st_ino), parent.depth + 1)
        self._track(frame)
        return frame

    def _close(self, frame: _Frame) -> None:
        if frame.fd is not None:
            os.close(frame.fd)
            frame.fd = None
            self._open.remove(frame)

    def _leave(self, frame: _Frame, parent: _Frame | None) -> None:
        """Done with ``frame``: give its parent its descriptor back through '..' when it was closed.

        The frame on top of the stack always has a descriptor (it is the newest, never the one
        closed first), so going back up costs one open per closed directory, never a walk from the root.
        """
        if parent is not None and parent.fd is None and not (frame.fd is not None and self._reopen(parent, frame.fd)):
            if parent.subdirs:
                self._note(f"{parent.path or '.'}/: cannot be reopened; the rest of it was not scanned")
            parent.subdirs.clear()
        self._close(frame)

    def _reopen(self, parent: _Frame, child_fd: int) -> bool:
        try:
            fd = os.open("..", DIR_FLAGS, dir_fd=child_fd)
        except OSError as exc:
            log.warning("%s/: cannot be reopened: %s", parent.path or ".", exc.strerror or exc)
            return False
        try:
            info = os.fstat(fd)
            if (info.st_dev, info.st_ino) != parent.identity:
                raise OSError(errno.ESTALE, "moved during the scan")
            check_same_mount(fd, self._root)
        except OSError as exc:
            os.close(fd)
            log.warning("%s/: %s", parent.path or ".", exc.strerror or exc)
            return False
        parent.fd = fd
        self._track(parent)
        return True

    def _track(self, frame: _Frame) -> None:
        self._open.append(frame)
        while len(self._open) > MAX_OPEN:
            self._close(self._open[0])

    # -- listing ------------------------------------------------------------------------------------

    def _list(self, frame: _Frame, *, record: bool) -> Iterator[FileEntry]:
        assert frame.fd is not None
        prefix = f"{frame.path}/" if frame.path else ""
        count = 0
        subdirs: list[tuple[str, int]] = []
        try:
            mtime = os.fstat(frame.fd).st_mtime
            with os.scandir(frame.fd) as entries:
                for entry in entries:
                    count += 1
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    except OSError as exc:
                        self._note(f"{prefix}{entry.name}: skipped: {exc.strerror or exc}")
                        continue
                    if stat.S_ISDIR(info.st_mode):
                        if info.st_dev == self._root.dev:
                            subdirs.append((entry.name, info.st_ino))
                    elif stat.S_ISREG(info.st_mode):
                        yield FileEntry(
                            path=prefix + entry.name,
                            size=info.st_size,
                            mtime=info.st_mtime,
                            token=(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns),
                        )
                    # symlinks, sockets, fifos, devices: never ours to delete (they keep the directory)
        except OSError as exc:
            self._note(f"{prefix or './'}: listing failed: {exc.strerror or exc}")
            frame.subdirs = []
            return
        subdirs.reverse()  # popped from the end: entered in listing order
        frame.subdirs = subdirs
        if record and len(self.directories) < MAX_TRACKED:
            self.directories.append(DirectoryEntry(frame.path, mtime, count, frame.identity))
        elif record and not self.truncated:
            self.truncated = True
            log.warning("more than %d directories: the rest are not considered for removal", MAX_TRACKED)
