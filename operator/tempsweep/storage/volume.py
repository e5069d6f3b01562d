"""A directory on a mounted volume: streamed scanning and re-checked deletion that cannot escape the root.

Every directory is opened relative to its parent's file descriptor with ``O_NOFOLLOW``, starting
from ``/`` for the root itself, so no symlink is ever followed (not even one in the middle of the
root's path) and no path string is ever resolved against the live filesystem: a directory swapped
for a symlink mid-run makes the open fail instead of leading elsewhere. Mount points are not
entered: neither another device nor a bind mount of the same filesystem (told apart by the mount id
in ``/proc/self/fdinfo``). Before each unlink the file is opened again through the same descriptor
and must still be the regular file that was scanned (same device, inode, size and mtime), otherwise
it is left alone.

As systemd-tmpfiles does, every directory on the way down and the file itself are locked with a
non-blocking exclusive ``flock`` until the unlink is done; an entry someone else holds a lock on is
kept and counted as in use (``locking`` says what such a lock does and does not see). The scan is
the linear walk of ``walker``; deletions move a ``PathCursor`` between neighbouring directories
instead of walking again from the root for each one; ``remove_directories`` rmdirs the directories
the engine chose, deepest first, with the same checks.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
from collections.abc import Callable, Iterator, Sequence

import psutil

from tempsweep.engine.ports import (
    DeleteResult,
    DirectoryEntry,
    DirectoryResult,
    FileEntry,
    Outcome,
    StorageError,
    Usage,
)
from tempsweep.storage.dirfds import PathCursor, RootIds, open_without_symlinks
from tempsweep.storage.locking import PROCESS_LOCKS, InUse
from tempsweep.storage.walker import Walk

log = logging.getLogger(__name__)

_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_NOT_NAMES = frozenset(("", ".", ".."))
S_ISREG = stat.S_ISREG


def _split(path: str) -> tuple[tuple[str, ...], str] | None:
    """(parent components, name) of a relative path, or None when it could leave the directory tree.

    Checked with substring searches rather than per component, so a path thousands of levels deep
    costs no Python loop (a deep chain would otherwise make deleting quadratic in its depth).
    """
    padded = f"/{path}/"
    if "\x00" in path or "//" in padded or "/./" in padded or "/../" in padded:
        return None
    parent, _, name = path.rpartition("/")
    return (tuple(parent.split("/")) if parent else ()), name


def _parent_parts(prefix: str) -> tuple[str, ...] | None:
    """The directories of a file's path prefix (``"a/b/"``; ``""`` is the root), or None when the
    prefix could leave the tree (an empty, ``.`` or ``..`` component, a leading '/', a NUL)."""
    if not prefix:
        return ()
    padded = "/" + prefix
    if "\x00" in prefix or "//" in padded or "/./" in padded or "/../" in padded:
        return None
    return tuple(prefix[:-1].split("/"))


def _refusal(exc: BaseException) -> tuple[Outcome, str]:
    """What to report when a directory on the way to an entry cannot be entered."""
    if isinstance(exc, InUse):
        return Outcome.IN_USE, "a directory above it is locked by another process"
    if isinstance(exc, FileNotFoundError):
        return Outcome.VANISHED, ""
    assert isinstance(exc, OSError)
    if exc.errno == errno.ELOOP:
        return Outcome.FAILED, "not deleted: directory is now a symlink"
    return Outcome.FAILED, f"not deleted: {exc.strerror or exc}"


class VolumeStorage:
    """Files under one absolute directory."""

    def __init__(self, root: str) -> None:
        if not os.path.isabs(root):
            raise StorageError(f"volume path {root!r} is not absolute")
        self.root = os.path.normpath(root)
        self.description = f"volume {self.root}"
        self._errors: list[str] = []
        self._root_identity: tuple[int, int] | None = None
        self._locks = PROCESS_LOCKS  # one table per process: our own scans never look like another process
        self._directories: list[DirectoryEntry] = []
        self._in_use: list[str] = []

    # -- opening directories without following anything -------------------------------------

    def _open_root(self) -> int:
        try:
            fd = open_without_symlinks(self.root)
        except FileNotFoundError:
            raise StorageError(f"volume path {self.root} does not exist") from None
        except NotADirectoryError:
            raise StorageError(f"volume path {self.root} is not a directory") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StorageError(
                    f"volume path {self.root} is a symlink or passes through one; give the real path"
                ) from None
            raise StorageError(f"volume path {self.root} cannot be opened: {exc.strerror}") from None
        info = os.fstat(fd)
        identity = (info.st_dev, info.st_ino)
        if self._root_identity is None:
            self._root_identity = identity
        elif identity != self._root_identity:
            os.close(fd)
            raise StorageError(f"volume path {self.root} was replaced by another directory during the run")
        return fd

    # -- StorageProvider -----------------------------------------------------------------------

    def scan(self) -> Iterator[FileEntry]:
        """Regular files under the root, depth first, streamed: memory grows with depth, not size."""
        return self.scan_pruned(None)

    def scan_pruned(self, prune: Callable[[str], bool] | None) -> Iterator[FileEntry]:
        """``scan``, not entering directories for which ``prune(relative path)`` is true."""
        self._errors = []
        self._directories = []
        self._in_use = []
        root_fd = self._open_root()
        walk = Walk(root_fd, self._locks, self._note, prune)
        try:
            yield from walk.files()
        finally:
            os.close(root_fd)
            self._directories = walk.directories
            self._in_use = walk.in_use

    def directories(self) -> Sequence[DirectoryEntry]:
        return self._directories

    def skipped_in_use(self) -> list[str]:
        found, self._in_use = self._in_use, []
        return found

    def _note(self, message: str) -> None:
        log.warning("%s: %s", self.description, message)
        if len(self._errors) < 1000:
            self._errors.append(message)

    def scan_errors(self) -> list[str]:
        errors, self._errors = self._errors, []
        return errors

    def filesystem_usage(self) -> Usage | None:
        try:
            usage = psutil.disk_usage(self.root)
        except FileNotFoundError:
            raise StorageError(f"volume path {self.root} does not exist") from None
        except OSError as exc:
            raise StorageError(f"volume path {self.root}: cannot read usage: {exc.strerror}") from None
        return Usage(used=usage.used, total=usage.used + usage.free)

    def delete(self, entries: Sequence[FileEntry]) -> list[DeleteResult]:
        """Delete the entries that are still exactly as scanned and not locked; one result per entry."""
        return self._each_file(entries, unlink=True)

    def probe(self, entries: Sequence[FileEntry]) -> list[DeleteResult]:
        """What ``delete`` would do (DELETED: would be deleted), for dry runs; nothing is changed."""
        return self._each_file(entries, unlink=False)

    def _each_file(self, entries: Sequence[FileEntry], *, unlink: bool) -> list[DeleteResult]:
        """Group the entries by directory, enter each directory once (in path order, so neighbours
        share the cursor's open and locked directories) and check-lock-unlink its files in one loop."""
        results: list[DeleteResult] = []
        groups: dict[str, list[FileEntry]] = {}
        for entry in entries:
            path = entry.path
            groups.setdefault(path[: path.rfind("/") + 1], []).append(entry)  # "dir/sub/", or "" for the root
        located: list[tuple[tuple[str, ...], list[FileEntry]]] = []
        for parent, group in groups.items():
            parts = _parent_parts(parent)
            if parts is None:
                results.extend(DeleteResult(e, Outcome.FAILED, "path is not inside the volume") for e in group)
            else:
                located.append((parts, group))
        located.sort(key=lambda item: item[0])
        root_fd = self._open_root()
        cursor = PathCursor(root_fd, RootIds.of(root_fd), self._locks)
        try:
            for parts, group in located:
                try:
                    fd = cursor.goto(parts)
                except (OSError, InUse) as exc:
                    outcome, detail = _refusal(exc)
                    results.extend(DeleteResult(e, outcome, detail) for e in group)
                    continue
                _delete_in(fd, group, results, unlink=unlink)
        finally:
            cursor.close()
            os.close(root_fd)
        return results

    def remove_directories(self, directories: Sequence[DirectoryEntry]) -> list[DirectoryResult]:
        """rmdir each directory, deepest first, if it is still the one scanned, empty, unlocked, not a mount."""
        results: list[DirectoryResult] = []
        ordered = sorted(directories, key=lambda d: (-d.depth, d.path))
        root_fd = self._open_root()
        cursor = PathCursor(root_fd, RootIds.of(root_fd), self._locks)
        try:
            for directory in ordered:
                split = _split(directory.path)
                if split is None:  # the root itself ("") and anything odd: never
                    results.append(DirectoryResult(directory, Outcome.FAILED, "not a directory below the root"))
                    continue
                try:
                    parent_fd = cursor.goto(split[0])
                except (OSError, InUse) as exc:
                    results.append(DirectoryResult(directory, *_refusal(exc)))
                    continue
                results.append(self._rmdir(parent_fd, split[1], directory, cursor))
        finally:
            cursor.close()
            os.close(root_fd)
        return results

    def _rmdir(self, parent_fd: int, name: str, directory: DirectoryEntry, cursor: PathCursor) -> DirectoryResult:
        try:
            cursor.goto((*directory.path.split("/")[:-1], name))  # opens, checks the mount, locks it
        except InUse:
            return DirectoryResult(directory, Outcome.IN_USE, "locked by another process")
        except FileNotFoundError:
            return DirectoryResult(directory, Outcome.VANISHED)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                return DirectoryResult(directory, Outcome.CHANGED, "a mount point: kept")
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                return DirectoryResult(directory, Outcome.CHANGED, "replaced since it was scanned")
            return DirectoryResult(directory, Outcome.FAILED, exc.strerror or str(exc))
        try:
            info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            if not stat.S_ISDIR(info.st_mode) or (info.st_dev, info.st_ino) != directory.token:
                return DirectoryResult(directory, Outcome.CHANGED, "replaced since it was scanned")
            os.rmdir(name, dir_fd=parent_fd)  # fails on a non-empty directory or a mount point: the check
        except FileNotFoundError:
            return DirectoryResult(directory, Outcome.VANISHED)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.EBUSY):
                return DirectoryResult(directory, Outcome.CHANGED, "no longer empty")
            return DirectoryResult(directory, Outcome.FAILED, exc.strerror or str(exc))
        return DirectoryResult(directory, Outcome.DELETED)


def _delete_in(dir_fd: int, group: list[FileEntry], results: list[DeleteResult], *, unlink: bool) -> None:
    """For each file of one directory: open it (no symlink followed), check it is the one scanned,
    lock it, check its name still leads to it, unlink it, then close (which lets the lock go).

    One loop with the system calls bound to locals: this runs once per deleted file, and the lock
    check already costs four system calls more than a bare stat + unlink, so Python work is kept
    out of it (a function call and a helper per file were a third of its CPU time).
    """
    open_, fstat, stat_, unlink_, close, flock = os.open, os.fstat, os.stat, os.unlink, os.close, fcntl.flock
    lock_flags = fcntl.LOCK_EX | fcntl.LOCK_NB
    append = results.append
    for entry in group:
        name = entry.path.rpartition("/")[2]
        if name in _NOT_NAMES or "\x00" in name:
            append(DeleteResult(entry, Outcome.FAILED, "path is not inside the volume"))
            continue
        try:
            fd = open_(name, _FILE_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            append(DeleteResult(entry, Outcome.VANISHED))
            continue
        except OSError as exc:
            append(_open_refused(entry, exc))
            continue
        try:
            info = fstat(fd)
            if not S_ISREG(info.st_mode) or (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns) != entry.token:
                append(DeleteResult(entry, Outcome.CHANGED, "changed since it was planned"))
                continue
            flock(fd, lock_flags)  # EWOULDBLOCK when another process holds a flock on it
            if unlink:
                named = stat_(name, dir_fd=dir_fd, follow_symlinks=False)
                if named.st_ino != info.st_ino or named.st_dev != info.st_dev:
                    append(DeleteResult(entry, Outcome.CHANGED, "changed since it was planned"))
                    continue
                unlink_(name, dir_fd=dir_fd)
        except FileNotFoundError:
            append(DeleteResult(entry, Outcome.VANISHED))
            continue
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                append(DeleteResult(entry, Outcome.IN_USE, "locked by another process"))
            else:  # a lock state we cannot know (ENOLCK, ...) or a failed unlink: kept, reported
                append(DeleteResult(entry, Outcome.FAILED, exc.strerror or str(exc)))
            continue
        finally:
            close(fd)  # drops our lock, after the unlink
        append(DeleteResult(entry, Outcome.DELETED))


def _open_refused(entry: FileEntry, exc: OSError) -> DeleteResult:
    if exc.errno in (errno.ELOOP, errno.ENXIO, errno.ENOTDIR):  # now a symlink, a socket, ...
        return DeleteResult(entry, Outcome.CHANGED, "changed since it was planned")
    return DeleteResult(entry, Outcome.FAILED, f"cannot be opened to check for a lock: {exc.strerror or exc}")
