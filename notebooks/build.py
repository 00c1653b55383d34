"""Regenerate the executed notebooks: each ``NN_*.py`` (the source) run top to bottom into its paired ``NN_*.ipynb``.

    python notebooks/build.py              # every notebook, at its default sizes (about 2.5 min on 2 cores)
    python notebooks/build.py 03 07        # only those (a number or a name)
    python notebooks/build.py --small --out /tmp/nb   # the test suite's tiny sizes, written elsewhere

Each notebook runs in a fresh ``python3`` kernel (nbclient) in ``notebooks/``, with the repository on its path,
no GPU (the numbers do not depend on one being present), ``PYTHONHASHSEED=0`` and a fresh IPython profile (not
the user's; inline figures at 80 dpi). The ``.ipynb`` written is jupytext's pairing of the ``.py`` (same cells,
same sources, same jupytext header) plus the outputs, normalised so that two builds of a seeded notebook on one
machine are byte-identical: execution counts set to None, no per-cell timing metadata, consecutive stream outputs
joined (how a print is split into messages depends on timing), cell ids numbered, notebook metadata reduced to
jupytext's header, the kernelspec and the language name, and the ids of widget models (notebook 08 stores its
explorer's state) renumbered in order of creation.
Prints each notebook's wall time (kernel start included) and size; a cell that raises stops the build (exit 1).
Each notebook runs in a process of its own (this file, run as a child), so that a notebook that stalls can be
stopped whole. Stalls happen with widget cells (kernel and client both idle, no cell timeout firing: nbclient
issue #312, nbconvert #1921 and #2029, all open); rare, but seen in two of this project's test runs. A notebook
still running after ``NOTEBOOK_TIMEOUT_S`` (``SMALL_TIMEOUT_S`` at the small sizes) has its process and its
kernel killed and runs again from scratch, up to ``ATTEMPTS`` times in all; the last stall stops the build
(exit 1). The retry needs the fresh process: when the stall was interrupted in the process that ran it and the
retry ran there too, the retry stalled as well (seen in CI, the interrupted run's asyncio task left failing).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbclient
import nbformat

NOTEBOOKS = Path(__file__).resolve().parent
ROOT = NOTEBOOKS.parent
SMALL_SWITCH = "TSE_NOTEBOOK_SMALL"
CELL_TIMEOUT_S = 300
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
FIGURE_DPI = 80  # of the inline PNGs: readable, and a few hundred kB per notebook
NOTEBOOK_TIMEOUT_S = 300  # a whole notebook; each runs in under a minute at its defaults
SMALL_TIMEOUT_S = 45  # at the small sizes each runs in 5-11 s on 2 cores: a stall costs the test suite 45 s
POLL_SLICE_S = 1.0  # the longest single wait on a kernel channel (see _Client)
ATTEMPTS = 3  # runs of a notebook that keeps stalling, each in a fresh process, before the build gives up
CHILD = "--child"  # how execute() runs this file: --child OUT.json KERNEL.pid NOTEBOOK.py [--small]


class Stalled(Exception):
    """A notebook ran past its time limit in every attempt."""


def execute(path: Path, *, small: bool = False, timeout_s: float | None = None,
            attempts: int = ATTEMPTS) -> nbformat.NotebookNode:
    """The notebook of ``path`` (a ``.py``) executed and normalised (module doc), in a process of its own.

    Raises nbclient's ``CellExecutionError`` (the failing cell's traceback) on the first cell that raises, and
    :class:`Stalled` when every one of ``attempts`` runs went past ``timeout_s`` (default ``NOTEBOOK_TIMEOUT_S``,
    ``SMALL_TIMEOUT_S`` when ``small``); each run that stalls is killed, its kernel with it, and started afresh.
    """
    timeout_s = (SMALL_TIMEOUT_S if small else NOTEBOOK_TIMEOUT_S) if timeout_s is None else timeout_s
    path = Path(path).resolve()
    for attempt in range(1, attempts + 1):
        with tempfile.TemporaryDirectory(prefix="tse-notebook-") as tmp:
            out, kernel = Path(tmp) / "result.json", Path(tmp) / "kernel.pid"
            cmd = [sys.executable, str(Path(__file__).resolve()), CHILD, str(out), str(kernel), str(path)]
            try:
                done = subprocess.run(cmd + (["--small"] if small else []), timeout=timeout_s, check=False)
            except subprocess.TimeoutExpired:  # the child is killed by now; its kernel leads a process group
                _kill_group(kernel)
                print(f"{path.name}: stalled after {timeout_s:g} s (attempt {attempt} of {attempts})",
                      file=sys.stderr, flush=True)
                continue
            except BaseException:  # Ctrl-C: run() gives the child 0.25 s, then kills it, maybe before its cleanup
                _kill_group(kernel)
                raise
            if done.returncode != 0 or not out.is_file():
                raise RuntimeError(f"{path.name}: the process running it exited with {done.returncode}")
            result = json.loads(out.read_text())
        if "error" in result:
            raise nbclient.exceptions.CellExecutionError(**result["error"])
        return nbformat.from_dict(result["notebook"])
    raise Stalled(f"{path.name}: stalled in every attempt ({attempts}, {timeout_s:g} s each)")


def _kill_group(pid_file: Path) -> None:
    """Kill the process group led by the kernel whose id ``pid_file`` holds, if it was written. (Without this the
    kernel would still exit, polling for its parent, unless it started after its parent was killed.)"""
    try:
        os.killpg(int(pid_file.read_text()), signal.SIGKILL)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        pass


def _child(argv: list[str]) -> int:
    """``--child OUT KERNEL_PID NOTEBOOK [--small]``: execute one notebook in this process, write its kernel's
    process id to KERNEL_PID once it is up and the normalised notebook, or the failing cell's error, to OUT as
    JSON (see :func:`execute`)."""
    out, kernel, path, *flags = argv
    try:
        result = {"notebook": execute_here(Path(path), small="--small" in flags, kernel_pid=Path(kernel))}
    except nbclient.exceptions.CellExecutionError as err:
        result = {"error": {"traceback": err.traceback, "ename": err.ename, "evalue": err.evalue}}
    Path(out).write_text(json.dumps(result))
    return 0


def sources() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


@contextlib.contextmanager
def kernel_environment(small: bool):
    """The environment every kernel inherits: the size switch, the repository on the path, this interpreter first
    on PATH (the python3 kernelspec launches ``python``), no GPU, a fixed hash seed, and an IPython profile of its
    own (not the user's) that sets the inline figures' dpi. Restored afterwards."""
    saved = dict(os.environ)
    profile = Path(tempfile.mkdtemp(prefix="tse-ipython-"))
    (profile / "profile_default").mkdir()
    (profile / "profile_default" / "ipython_kernel_config.py").write_text(
        f"c.InlineBackend.print_figure_kwargs = {{'bbox_inches': 'tight', 'dpi': {FIGURE_DPI}}}\n")
    os.environ["IPYTHONDIR"] = str(profile)
    os.environ[SMALL_SWITCH] = "1" if small else "0"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), saved.get("PYTHONPATH")]))
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), saved.get("PATH", "")])
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ["PYTHONHASHSEED"] = "0"
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(profile, ignore_errors=True)


def sliced(get_msg, slice_s: float = POLL_SLICE_S):
    """A channel's ``get_msg(timeout)`` (a coroutine function) that waits in slices of at most ``slice_s``: the
    same result and the same ``queue.Empty`` at the same deadline (none for ``timeout=None``), but a message that
    arrived unnoticed by one wait is taken by the next slice's."""
    from queue import Empty

    async def get(timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = slice_s if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await get_msg(timeout=min(slice_s, left))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    return get


class _Client(nbclient.NotebookClient):
    """nbclient's client, with its kernel channels read by :func:`sliced` waits. A widget notebook (08) sometimes
    stalls (module doc): kernel and client idle, the client waiting on the shell channel for a reply until the cell
    timeout; nbclient issue #312 reports a message that such a wait returns only when it times out. Whether the
    slices prevent this project's stalls is not known (they are rare: one in tens of test runs); the notebook time
    limit below stops a stall either way."""

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        for channel in (kc.shell_channel, kc.iopub_channel):
            channel.get_msg = sliced(channel.get_msg)
        return kc


@contextlib.contextmanager
def _kernel_transport(within: Path | None = None):
    """A kernel manager's config: the kernel's channels as Unix sockets in a private temporary directory (in
    ``within`` when given, which :func:`execute` removes even when it kills this process) where the system has
    them, since ipykernel >= 7 warns that TCP on localhost is unencrypted; else TCP as before. (The sockets' path
    is absolute: the kernel runs in ``notebooks/``, this process elsewhere.)"""
    from traitlets.config import Config

    if os.name != "posix":
        yield Config()
        return
    with tempfile.TemporaryDirectory(prefix="tse-kernel-", dir=within) as sockets:
        yield Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets, "kernel")}})


def execute_here(path: Path, *, small: bool = False, kernel_pid: Path | None = None) -> nbformat.NotebookNode:
    """The notebook of ``path`` executed in a kernel started from this process, with no time limit of its own
    beyond nbclient's per cell, and normalised; raises on the first failing cell. :func:`execute` runs this in a
    child process it can stop, and kills the kernel whose process id this writes to ``kernel_pid``."""
    nb = jupytext.read(path)
    with kernel_environment(small), _kernel_transport(kernel_pid and kernel_pid.parent) as config:
        client = _Client(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", record_timing=False,
                         store_widget_state=True, resources={"metadata": {"path": str(NOTEBOOKS)}}, config=config)
        if kernel_pid is not None:  # once the kernel is up, before the first cell
            client.on_notebook_start = lambda notebook: kernel_pid.write_text(str(client.km.provisioner.pid))
        client.execute()
    return normalise(nb)


def normalise(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Strip what changes from run to run without the computation changing (module doc). In place; returns nb."""
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.execution_count = None
            cell.outputs = _coalesced(cell.outputs)
            for out in cell.outputs:
                if "execution_count" in out:
                    out.execution_count = None
    meta = nb.metadata
    kept = {k: meta[k] for k in ("jupytext", "kernelspec") if k in meta}
    if "language_info" in meta:
        kept["language_info"] = {"name": meta.language_info.get("name", "python")}
    if WIDGET_STATE in meta.get("widgets", {}):
        kept["widgets"] = meta.widgets
    nb.metadata = nbformat.from_dict(kept)
    return _renumber_widgets(nb) if "widgets" in kept else nb


def _coalesced(outputs: list) -> list:
    """Consecutive stream outputs of one stream joined into one, as a notebook frontend shows them: how a print's
    text is split into messages depends on when the kernel flushed, not on what was printed."""
    merged: list = []
    for out in outputs:
        if (out.output_type == "stream" and merged and merged[-1].output_type == "stream"
                and merged[-1].name == out.name):
            merged[-1].text += out.text
        else:
            merged.append(out)
    return merged


def _renumber_widgets(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Widget model ids are random UUIDs: replace each by a counter, in the (deterministic) order of creation."""
    state = nb.metadata.widgets[WIDGET_STATE]["state"]
    ids = {old: f"{i:032x}" for i, old in enumerate(state)}
    text = json.dumps(nb)
    for old, new in ids.items():
        text = text.replace(old, new)
    return nbformat.from_dict(json.loads(text))


def select(names: list[str]) -> list[Path]:
    paths = sources()
    if not names:
        return paths
    chosen = []
    for name in names:
        hits = [p for p in paths if p.stem == name or p.stem.startswith(name + "_") or p.name == name]
        if len(hits) != 1:
            raise SystemExit(f"build.py: {name!r} names {len(hits)} notebooks; give a number (03) or a file name")
        chosen += hits
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks to build (03 or 03_figure3_walkthrough); default all")
    parser.add_argument("--small", action="store_true", help=f"the test suite's tiny sizes ({SMALL_SWITCH}=1)")
    parser.add_argument("--out", type=Path, default=NOTEBOOKS, help="where the .ipynb files go (default notebooks/)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    total_s, total_bytes = 0.0, 0
    for path in select(args.names):
        t0 = time.perf_counter()
        try:
            nb = execute(path, small=args.small)
        except nbclient.exceptions.CellExecutionError as err:
            print(f"{path.name}: a cell failed\n{err}", file=sys.stderr)
            return 1
        except Stalled as err:
            print(f"{err}; nothing written for it", file=sys.stderr)
            return 1
        elapsed = time.perf_counter() - t0
        target = args.out / (path.stem + ".ipynb")
        jupytext.write(nb, target, fmt="ipynb")
        size = target.stat().st_size
        total_s, total_bytes = total_s + elapsed, total_bytes + size
        print(f"{target.name}: {elapsed:.1f} s, {size / 1e3:.0f} kB", flush=True)
    print(f"total: {total_s:.1f} s, {total_bytes / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[2:]) if sys.argv[1:2] == [CHILD] else main())
