"""Checkpoints: an interrupted run continues from its last finished chunk and ends with identical results.

After every chunk the engine saves the merged statistics, the number of chunks done and the seconds they took
(so a resumed run reports the time of the whole) to ``DIR/.{figure}.checkpoint.{hash}.npz``, written atomically (a
kill at any moment leaves the previous checkpoint whole). A checkpoint is used only by the same command: same
figure, same config, the same device and the same code (a hash of the ``theory`` and ``simulations`` sources),
which together make its key; ``{hash}`` is a hash of that key, so a run of another config in the same ``DIR``
neither uses nor touches it, and anything else starts afresh. The checkpoint is removed once the figure's results
are written (an abandoned one of another config stays until removed by hand).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .stats import StreamingStats
from .files import atomic_write
from .runner import resolve_device

__all__ = ["Checkpoint", "code_hash"]

ROOT = Path(__file__).resolve().parents[2]  # the repository: theory/ and simulations/ side by side
_SOURCES = (("theory", "**/*.py"), ("simulations", "**/*.py"), ("theory", "*.c"), ("theory", "*.cu"))


def code_hash(root: Path = ROOT) -> str:
    """SHA-256 of the sources of ``theory`` and ``simulations`` under ``root``: every ``.py`` file of both
    packages, subpackages included, and the C and CUDA kernels of ``theory`` (a changed engine never resumes).
    Each file contributes its path relative to ``root`` and its length before its bytes, so no two sets of files
    hash alike by moving bytes from one file to the next."""
    paths = sorted({p for package, pattern in _SOURCES for p in (root / package).glob(pattern) if p.is_file()})
    h = hashlib.sha256()
    for path in paths:
        data = path.read_bytes()
        h.update(f"{path.relative_to(root).as_posix()}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


@dataclass
class Checkpoint:
    path: Path
    key: str  # identifies the command: figure, config and code

    @classmethod
    def for_run(cls, out: str | Path, figure: str, config: dict) -> "Checkpoint":
        # the device the run goes to, not the flag ("auto"): a GPU's random numbers are not a CPU's, so a run begun
        # on one and resumed on the other would mix two streams
        try:
            device = resolve_device(config["device"]).type if "device" in config else None
        except ValueError:  # --device cuda without a GPU: the run itself says so
            device = config["device"]
        key = json.dumps({"figure": figure, "config": config, "code": code_hash(), "runs_on": device},
                         sort_keys=True, default=str)
        # one file per command: runs of other configs in the same folder keep their own checkpoints
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return cls(Path(out) / f".{figure}.checkpoint.{digest}.npz", key)

    def read(self) -> dict[str, np.ndarray] | None:
        """The arrays of a checkpoint written by this very command, else ``None`` (absent, unreadable, other)."""
        if not self.path.is_file():
            return None
        try:
            with np.load(self.path, allow_pickle=False) as z:
                if str(z["key"]) != self.key:
                    return None
                return {k: z[k] for k in z.files if k != "key"}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
            return None  # unreadable (truncated, damaged) or from another version: start afresh

    def write(self, **arrays: np.ndarray) -> None:
        """Save ``arrays`` under this command's key, atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, key=np.array(self.key), **arrays)
        atomic_write(self.path, buf.getvalue())

    def load(self) -> tuple[StreamingStats, int] | None:
        """(statistics, chunks done) from a checkpoint of this very command, else ``None``."""
        arrays = self.read()
        if arrays is None or "chunks_done" not in arrays:
            return None
        done = int(arrays.pop("chunks_done"))
        seconds = float(arrays.pop("seconds", 0.0))
        stats = StreamingStats.from_state(arrays)
        stats.earlier_seconds = seconds
        return stats, done

    def save(self, stats: StreamingStats, chunks_done: int, seconds: float = 0.0) -> None:
        """Save ``stats`` after ``chunks_done`` chunks, which took ``seconds`` of the run so far (all processes)."""
        self.write(chunks_done=np.array(chunks_done), seconds=np.array(float(seconds)), **stats.state())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
