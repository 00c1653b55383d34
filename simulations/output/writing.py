"""Writing results: ``DIR/figN.csv`` (step,metric,mean,ci_low,ci_high,count), ``DIR/figN.png`` and
``DIR/figN.json`` (config, seed, versions, device, elapsed seconds, checks and, for figures that have them, the
findings README quotes). All three are written to temporary names in the same directory first, then moved into
place one after another, the JSON (the run's record) last: a crash never leaves a half-written file, a crash while
they are written leaves the previous result whole, and only one in the instant between two renames can leave new
files beside the previous JSON."""

from __future__ import annotations

import csv
import io as _io
import json
import os
import platform
import tempfile
from pathlib import Path

from importlib.metadata import PackageNotFoundError, version

import numpy as np

from ..engine.files import atomic_write_all
from ..engine.result import FigureResult

__all__ = ["write_result", "write_sweep", "read_csv", "check_out_dir", "CSV_COLUMNS"]

CSV_COLUMNS = ("step", "metric", "mean", "ci_low", "ci_high", "count")


def check_out_dir(out: str | os.PathLike) -> Path:
    """Refuse, before any work is done, an ``out`` that is empty, a file or cannot be written; creates nothing."""
    if os.fspath(out) == "":  # Path("") is ".": the results would land in whatever the current directory is
        raise ValueError("--out must name a directory; got an empty path (use --out . for the current directory)")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out must be a directory; {str(path)!r} is a file")
    probe = path
    while not probe.exists():  # the nearest existing ancestor must let us create the rest
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"--out {str(path)!r} is not writable (no write permission on {str(probe)!r})")
    return path


def make_out_dir(out: str | os.PathLike) -> Path:
    """Check, before any work is done, that ``out`` can be created and written: the directories missing on the way
    are made, a file is created in ``out`` and removed, and the directories made here are removed again (so a run
    that then fails on its input leaves nothing). Catches what the permission bits of :func:`check_out_dir` cannot
    tell: a place the file system refuses (``/proc``, a read-only mount; any path when running as root)."""
    path = check_out_dir(out)
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    try:
        for directory in reversed(missing):
            directory.mkdir()
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ValueError(f"--out {str(path)!r} cannot be written: {exc.strerror or exc}") from None
    finally:
        for directory in missing:  # deepest first; only those made here, and only while empty
            try:
                directory.rmdir()
            except OSError:
                break
    return path


def _csv_bytes(result: FigureResult) -> bytes:
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in result.rows:
        w.writerow([r.step, r.metric, repr(r.mean), repr(r.ci_low), repr(r.ci_high), r.count])
    return buf.getvalue().encode()


def versions() -> dict[str, str]:
    """Versions of Python and of the packages a result depends on (the packages' read from metadata, without
    importing them), ``code``, the hash of this checkout's ``theory`` and ``simulations`` sources (``findings`` warns
    when it differs), and the CPU capability torch's kernels ran with (from torch, which every run has imported)."""
    from ..engine.checkpoint import code_hash

    out = {"python": platform.python_version(), "code": code_hash(),
           # torch's CPU kernels by vector instruction set (AVX2, AVX512, ...; ATEN_CPU_CAPABILITY picks one):
           # float32 training rounds differently under each, and train's per-seed accuracies move with it
           "cpu_capability": _cpu_capability()}
    for package in ("torch", "numpy", "scipy", "matplotlib", "tse-sandbox"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def _cpu_capability() -> str:
    import torch

    try:
        return torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # torch before 2.1
        return "unknown"


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if np.isfinite(x) else str(float(x))
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def write_result(result: FigureResult, figure, out: str | os.PathLike) -> dict[str, Path]:
    """Write CSV, PNG (from the matplotlib ``figure``) and JSON of ``result`` under ``out``."""
    out = check_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(f".{result.name}.*.tmp"):  # left by a process killed mid-write (SIGKILL)
        stale.unlink(missing_ok=True)
    paths = {ext: out / f"{result.name}.{ext}" for ext in ("csv", "png", "json")}
    png = _io.BytesIO()
    figure.savefig(png, format="png", dpi=120)
    meta = {"figure": result.name, "config": result.config, "seed": result.config.get("seed"),
            "device": result.device, "elapsed_s": round(result.elapsed_s, 3), "versions": versions(),
            "checks": result.checks, "csv_columns": list(CSV_COLUMNS), "metrics": result.metrics}
    if result.findings:
        meta["findings"] = result.findings
    atomic_write_all([(paths["csv"], _csv_bytes(result)), (paths["png"], png.getvalue()),
                      (paths["json"], (json.dumps(_jsonable(meta), indent=2) + "\n").encode())])
    return paths


def write_sweep(figure_name: str, swept: dict, fixed: dict, results: list[dict], figure, out: str | os.PathLike,
                elapsed_s: float, findings: dict | None = None) -> dict[str, Path]:
    """Write ``sweep.csv`` (the swept flags, then the figure CSV's columns, one row per point, step and metric),
    ``sweep.png`` and ``sweep.json`` (grid, per-point config, summary and checks, versions) under ``out``."""
    out = check_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".sweep.*.tmp"):  # left by a process killed mid-write (SIGKILL)
        stale.unlink(missing_ok=True)
    names = list(swept)
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*names, *CSV_COLUMNS])
    for r in results:
        for row in r["rows"]:
            w.writerow([*(r["point"][n] for n in names), row.step, row.metric, repr(row.mean), repr(row.ci_low),
                        repr(row.ci_high), row.count])
    png = _io.BytesIO()
    figure.savefig(png, format="png", dpi=120)
    meta = {"sweep": figure_name, "swept": swept, "fixed": fixed, "points": len(results),
            "elapsed_s": round(elapsed_s, 3), "versions": versions(), "csv_columns": [*names, *CSV_COLUMNS],
            "results": [{"point": r["point"], "config": r["config"], "summary": r["summary"], "checks": r["checks"],
                         "device": r["device"], "elapsed_s": r["elapsed_s"]} for r in results]}
    if findings:
        meta["findings"] = findings
    paths = {ext: out / f"sweep.{ext}" for ext in ("csv", "png", "json")}
    atomic_write_all([(paths["csv"], buf.getvalue().encode()), (paths["png"], png.getvalue()),
                      (paths["json"], (json.dumps(_jsonable(meta), indent=2) + "\n").encode())])
    return paths


def read_csv(path: str | os.PathLike) -> list[dict]:
    """Rows of a results CSV with numbers parsed (for notebooks and tests: they only read)."""
    with open(path, newline="") as f:
        return [{"step": int(r["step"]), "metric": r["metric"], "mean": float(r["mean"]),
                 "ci_low": float(r["ci_low"]), "ci_high": float(r["ci_high"]), "count": int(r["count"])}
                for r in csv.DictReader(f)]
