"""BSD ``flock`` locks as systemd-tmpfiles uses them: "someone is still using this, leave it".

Before a file is unlinked (and before a directory is entered or removed) tempsweep takes a
non-blocking exclusive ``flock``. If another process holds any ``flock`` on it (shared or
exclusive), the entry is skipped and counted, never waited for; otherwise tempsweep keeps its lock
until the unlink is done, so nobody can take it in between.

What this sees and what it does not:

* It sees ``flock(2)`` locks taken by any process on this machine (``flock(1)``, Python's
  ``fcntl.flock``, most language runtimes' "lock file" helpers), on local filesystems.
* It does not see POSIX record locks (``fcntl(F_SETLK)``, ``lockf``) on local filesystems: Linux
  keeps the two kinds apart. Nor does it see a file that is merely open: an application must lock
  what it wants protected.
* On NFS, Linux emulates ``flock`` with whole-file POSIX locks that the server arbitrates, so locks
  from other nodes are seen (and POSIX locks conflict with them too) unless the share is mounted
  with ``local_lock=flock`` or ``local_lock=all``: then only this node's locks count. Other shared
  filesystems (CIFS/SMB, CephFS, FUSE) differ; tempsweep cannot tell which applies, so a pod on
  another node should lock through the same mechanism the mount arbitrates.
* A lock the filesystem refuses to give for another reason (``ENOLCK``, ...) counts as "cannot
  check": the entry is kept and the error reported.

Several of tempsweep's own threads may need the same directory locked at once (batches of one
directory are deleted in parallel); since two ``flock`` calls on separately opened descriptors
conflict even within one process, the ``LockTable`` shares one lock per directory between them. The
table is the process's (``PROCESS_LOCKS``), not one storage object's: the operator computes a policy's
statistics (a scan, which checks each directory's lock) while a cleanup of the same volume deletes with
a storage object of its own, and with a table each, each took the other's check for "another process":
the cleanup left whole directories alone as "locked by another process, not entered", and a run
resumed after a restart counted fewer files than it had left.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading


class InUse(Exception):
    """Another process holds a lock on this entry."""


def try_lock(fd: int) -> bool:
    """Take a non-blocking exclusive flock on ``fd``; False when another holder has one.

    Other errors (no lock support, ...) raise OSError: the caller must keep the entry.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    return True


class LockTable:
    """tempsweep's own directory locks, one per directory (by device and inode), shared by its threads."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held: dict[tuple[int, int], list[int]] = {}  # identity -> [our descriptor, users]

    def acquire(self, fd: int) -> tuple[int, int]:
        """Lock the directory open at ``fd`` (or join our existing lock on it); InUse if someone else has one."""
        info = os.fstat(fd)
        key = (info.st_dev, info.st_ino)
        with self._mutex:
            held = self._held.get(key)
            if held is not None:
                held[1] += 1
                return key
            own = os.dup(fd)  # the lock lives as long as this descriptor, whatever the caller closes
            try:
                if not try_lock(own):
                    raise InUse()
            except BaseException:
                os.close(own)
                raise
            self._held[key] = [own, 1]
            return key

    def release(self, key: tuple[int, int]) -> None:
        with self._mutex:
            held = self._held[key]
            held[1] -= 1
            if held[1] == 0:
                del self._held[key]
                os.close(held[0])  # closing the last descriptor drops the lock

    def probe(self, fd: int) -> bool:
        """True when the directory at ``fd`` is free of other processes' locks (checked, not kept)."""
        info = os.fstat(fd)
        with self._mutex:
            if (info.st_dev, info.st_ino) in self._held:
                return True
            if not try_lock(fd):
                return False
            fcntl.flock(fd, fcntl.LOCK_UN)
            return True


#: The locks this process holds, shared by every storage object of it (see the module docstring).
PROCESS_LOCKS = LockTable()
