"""Files written all or nothing: a crash leaves the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_all"]


def _read_umask() -> int:
    mask = os.umask(0)  # the only portable way to read it sets it: done once, at import, before any worker thread
    os.umask(mask)
    return mask


# the process's umask as it was at import (reading it again would set it to 0 for an instant, while the engine's
# worker threads may be creating files)
_UMASK = _read_umask()


def _write_temp(path: Path, data: bytes) -> Path:
    """``data`` in a new temporary file beside ``path``, fsynced; the temporary file's path."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it private; results are ordinary files
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over ``path`` (all or nothing)."""
    atomic_write_all([(path, data)])


def atomic_write_all(files: list[tuple[Path, bytes]]) -> None:
    """Write every ``(path, data)`` to a temporary file first, then rename them over their paths one after
    another, in the order given. A failure or signal while the temporary files are written leaves every path as
    it was; only one between two renames leaves the earlier paths new and the later ones old, so the caller puts
    last the file that says what the others are. Temporary files not renamed are removed."""
    pending: list[tuple[Path, Path]] = []
    try:
        for path, data in files:
            pending.append((_write_temp(path, data), path))
        while pending:
            tmp, path = pending[0]
            os.replace(tmp, path)
            pending.pop(0)
    finally:
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)
