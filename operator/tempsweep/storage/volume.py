"""A directory on a mounted volume: streamed scanning and re-checked deletion that cannot escape the root.

Every directory is opened relative to its parent's file descriptor with ``O_NOFOLLOW``, starting
from ``/`` for the root itself, so no symlink is ever followed (not even one in the middle of the
root's path) and no path string is ever resolved against the live filesystem: a directory swapped
for a symlink mid-run makes the open fail instead of leading elsewhere. Mount points are not
entered: neither another device nor a bind mount of the same filesystem (told apart by the mount id
in ``/proc/self/fdinfo``). Before each unlink the
file is stat-ed again through the same descriptor and must still be the regular file that was
scanned (same device, inode, size and mtime), otherwise it is left alone.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections import defaultdict
from collections.abc import Iterator, Sequence

import psutil

from tempsweep.engine.ports import DeleteResult, FileEntry, Outcome, StorageError, Usage

log = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _mount_id(fd: int) -> int | None:
    """The id of the mount ``fd`` is on, or None where /proc does not say (then st_dev alone decides)."""
    try:
        with open(f"/proc/self/fdinfo/{fd}", "rb") as handle:
            for line in handle:
                if line.startswith(b"mnt_id:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _open_directory(name: str, dir_fd: int) -> int:
    """Open the directory ``name`` in ``dir_fd`` without following it; a symlink is ELOOP."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except NotADirectoryError:  # what O_DIRECTORY | O_NOFOLLOW says about a symlink
        if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            raise OSError(errno.ELOOP, "a symlink") from None
        raise


def _open_without_symlinks(path: str) -> int:
    """Open the absolute directory ``path`` one component at a time from ``/``, following no symlink."""
    fd = os.open("/", _DIR_FLAGS)
    try:
        for part in path.split("/"):
            if part:
                next_fd = _open_directory(part, fd)
                os.close(fd)
                fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


class VolumeStorage:
    """Files under one absolute directory."""

    def __init__(self, root: str) -> None:
        if not os.path.isabs(root):
            raise StorageError(f"volume path {root!r} is not absolute")
        self.root = os.path.normpath(root)
        self.description = f"volume {self.root}"
        self._errors: list[str] = []
        self._root_identity: tuple[int, int] | None = None

    # -- opening directories without following anything -------------------------------------

    def _open_root(self) -> int:
        try:
            fd = _open_without_symlinks(self.root)
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

    @staticmethod
    def _open_below(root_fd: int, parts: Sequence[str], root_dev: int, root_mount: int | None) -> int:
        """Open root/parts... one component at a time, never following a symlink or leaving the mount."""
        fd = root_fd
        try:
            for part in parts:
                next_fd = _open_directory(part, fd)
                if fd != root_fd:
                    os.close(fd)
                fd = next_fd
                if os.fstat(fd).st_dev != root_dev:
                    raise OSError(errno.EXDEV, "on another filesystem")
            # a bind mount of the same filesystem has the same st_dev; below a mount point every
            # directory is on that mount (or one inside it), so checking the last one is enough
            if parts and root_mount is not None and _mount_id(fd) != root_mount:
                raise OSError(errno.EXDEV, "a mount point")
        except BaseException:
            if fd != root_fd:
                os.close(fd)
            raise
        return os.dup(fd) if fd == root_fd else fd

    # -- StorageProvider -----------------------------------------------------------------------

    def scan(self) -> Iterator[FileEntry]:
        """Regular files under the root, depth first, streamed: memory grows with depth, not size."""
        self._errors = []
        root_fd = self._open_root()
        root_dev, root_mount = os.fstat(root_fd).st_dev, _mount_id(root_fd)
        try:
            pending: list[tuple[str, ...]] = [()]
            while pending:
                parts = pending.pop()
                yield from self._scan_directory(root_fd, (root_dev, root_mount), parts, pending)
        finally:
            os.close(root_fd)

    def _scan_directory(
        self,
        root_fd: int,
        root_ids: tuple[int, int | None],
        parts: tuple[str, ...],
        pending: list[tuple[str, ...]],
    ) -> Iterator[FileEntry]:
        prefix = "/".join(parts) + "/" if parts else ""
        root_dev = root_ids[0]
        try:
            fd = self._open_below(root_fd, parts, *root_ids)
        except FileNotFoundError:
            return  # removed while we were scanning
        except OSError as exc:
            if exc.errno == errno.EXDEV:  # a bind mount: not entered, like any other mount point
                log.info("%s: %s: a mount point, not entered", self.description, prefix)
                return
            self._note(f"{prefix or './'}: skipped: {exc.strerror or exc}")
            return
        try:
            with os.scandir(fd) as entries:
                subdirs: list[tuple[str, ...]] = []
                for entry in entries:
                    try:
                        if not entry.is_file(follow_symlinks=False):
                            if (
                                entry.is_dir(follow_symlinks=False)
                                and entry.stat(follow_symlinks=False).st_dev == root_dev
                            ):
                                subdirs.append((*parts, entry.name))
                            continue  # symlinks, sockets, fifos, devices: never ours to delete
                        info = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    except OSError as exc:
                        self._note(f"{prefix}{entry.name}: skipped: {exc.strerror or exc}")
                        continue
                    yield FileEntry(
                        path=prefix + entry.name,
                        size=info.st_size,
                        mtime=info.st_mtime,
                        token=(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns),
                    )
                pending.extend(reversed(subdirs))
        except OSError as exc:
            self._note(f"{prefix or './'}: listing failed: {exc.strerror or exc}")
        finally:
            os.close(fd)

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
        """Delete the entries that are still exactly as scanned; one result per entry."""
        by_directory: dict[tuple[str, ...], list[FileEntry]] = defaultdict(list)
        for entry in entries:
            *parents, _ = entry.path.split("/")
            by_directory[tuple(parents)].append(entry)
        results: list[DeleteResult] = []
        root_fd = self._open_root()
        try:
            root_ids = (os.fstat(root_fd).st_dev, _mount_id(root_fd))
            for parts, group in by_directory.items():
                results.extend(self._delete_in(root_fd, root_ids, parts, group))
        finally:
            os.close(root_fd)
        return results

    def _delete_in(
        self, root_fd: int, root_ids: tuple[int, int | None], parts: tuple[str, ...], group: list[FileEntry]
    ) -> list[DeleteResult]:
        if any(part in ("", ".", "..") for part in parts):
            return [DeleteResult(e, Outcome.FAILED, "path is not inside the volume") for e in group]
        try:
            fd = self._open_below(root_fd, parts, *root_ids)
        except FileNotFoundError:
            return [DeleteResult(e, Outcome.VANISHED) for e in group]
        except OSError as exc:
            reason = "directory is now a symlink" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
            return [DeleteResult(e, Outcome.FAILED, f"not deleted: {reason}") for e in group]
        try:
            return [self._delete_one(fd, entry) for entry in group]
        finally:
            os.close(fd)

    @staticmethod
    def _delete_one(fd: int, entry: FileEntry) -> DeleteResult:
        name = entry.name
        if name in ("", ".", "..") or "\x00" in name:
            return DeleteResult(entry, Outcome.FAILED, "not a plain file name")
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return DeleteResult(entry, Outcome.VANISHED)
        except OSError as exc:
            return DeleteResult(entry, Outcome.FAILED, exc.strerror or str(exc))
        current = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        if not stat.S_ISREG(info.st_mode) or current != entry.token:
            return DeleteResult(entry, Outcome.CHANGED, "changed since it was planned")
        try:
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            return DeleteResult(entry, Outcome.VANISHED)
        except OSError as exc:
            return DeleteResult(entry, Outcome.FAILED, exc.strerror or str(exc))
        return DeleteResult(entry, Outcome.DELETED)
