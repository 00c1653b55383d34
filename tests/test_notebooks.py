"""The notebooks in ``notebooks/`` stay thin, keep running, and their committed outputs stay in sync (STYLE rule 9).

Each notebook's source of truth is its jupytext percent-format ``.py`` file, paired with an executed ``.ipynb``
(outputs included) that ``python notebooks/build.py`` regenerates. Its first code cell is tagged ``parameters``
and picks small sizes when ``TSE_NOTEBOOK_SMALL=1``; the execution test runs every cell through the build's own
``execute`` (a fresh ``python3`` kernel, nbclient, widget state stored) at those sizes and fails on the first
cell that raises. Set ``TSE_NOTEBOOK_FULL=1`` to execute them at their default sizes instead (under a minute
each). The pair tests read the committed ``.ipynb`` without running anything: same cells and sources as the
``.py``, outputs with figures, nothing volatile (execution counts, timings, random ids). They cannot tell stale
outputs; set ``TSE_NOTEBOOK_OUTPUTS=1`` to rebuild each notebook at its defaults and require the committed text
outputs to be the fresh build's.

Skipped when the notebook packages (jupytext, nbclient, ipykernel) are missing; the ``test`` extra installs them.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
IDS = [p.stem for p in PATHS]
SMALL_SWITCH = "TSE_NOTEBOOK_SMALL"
OUTPUTS_SWITCH = "TSE_NOTEBOOK_OUTPUTS"  # =1: rebuild each notebook at its defaults and compare its stored text
FORBIDDEN = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


MAX_NOTEBOOK_BYTES = 1_500_000  # outputs stay modest: a handful of figures at 80 dpi
VOLATILE_CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled")


@pytest.fixture(scope="module")
def build():
    """``notebooks/build.py``, loaded from its path (``notebooks/`` is not a package)."""
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def code_cells(path: Path) -> list:
    return [c for c in jupytext.read(path).cells if c.cell_type == "code"]


def python_source(cell) -> str:
    """The cell's code with IPython magics (``%matplotlib inline``) blanked, so ``ast`` can parse it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in cell.source.splitlines())


def test_notebooks_are_numbered_in_order_and_listed_in_the_readme():
    assert PATHS, f"no notebooks found in {NOTEBOOKS}"
    assert [int(p.name[:2]) for p in PATHS] == list(range(1, len(PATHS) + 1))
    readme = (NOTEBOOKS / "README.md").read_text()
    missing = [p.name for p in PATHS if p.name not in readme]
    assert not missing, f"notebooks/README.md does not mention {missing}"


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_notebook_is_thin_it_defines_nothing_and_imports_the_sandbox(path):
    imported = set()
    for i, cell in enumerate(code_cells(path)):
        tree = ast.parse(python_source(cell), filename=f"{path.name}, code cell {i}")
        for node in ast.walk(tree):
            assert not isinstance(node, FORBIDDEN), (
                f"{path.name}, code cell {i}, line {node.lineno}: a notebook defines nothing of its own "
                f"({type(node).__name__}); move the code to theory/ or simulations/")
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    assert imported & {"theory", "simulations"}, f"{path.name} imports neither theory nor simulations"
    assert "tests" not in imported, f"{path.name} imports test helpers; notebooks build on the public API only"


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_notebook_has_a_parameters_cell_first_with_the_small_switch(path):
    first = code_cells(path)[0]
    assert "parameters" in first.metadata.get("tags", []), f"{path.name}: first code cell must be tagged parameters"
    assert SMALL_SWITCH in first.source, f"{path.name}: the parameters cell must read {SMALL_SWITCH}"


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_notebook_text_is_canonical_jupytext_so_diffs_stay_readable(path):
    # Saving from Jupyter (or `jupytext --sync`) rewrites the .py; canonical text means that rewrite is a no-op.
    nb = jupytext.read(path)
    assert nb.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert path.read_text() == jupytext.writes(nb, fmt="py:percent"), (
        f"{path.name} is not in canonical jupytext form: run `jupytext --to py:percent {path}`")
    assert not re.search(r"jupytext_version:", path.read_text()), "version stamps make noisy diffs"


def volatile_parts(nb) -> list[str]:
    """What would change from one build to the next without the computation changing (build.py's module doc)."""
    found = []
    for i, cell in enumerate(nb.cells):
        if not re.fullmatch(r"cell-\d{2}", cell.get("id", "")):
            found.append(f"cell {i}: id {cell.get('id')!r} (build.py numbers them)")
        found += [f"cell {i}: metadata {k!r}" for k in VOLATILE_CELL_METADATA if k in cell.metadata]
        if cell.cell_type == "code":
            if cell.execution_count is not None:
                found.append(f"cell {i}: execution_count {cell.execution_count}")
            found += [f"cell {i}: output execution_count" for o in cell.outputs if o.get("execution_count") is not None]
            found += [f"cell {i}: a stream output split in two (its split depends on timing)"
                      for a, b in zip(cell.outputs, cell.outputs[1:])
                      if a.output_type == b.output_type == "stream" and a.name == b.name]
    extra = set(nb.metadata) - {"jupytext", "kernelspec", "language_info", "widgets"}
    found += [f"notebook metadata {k!r}" for k in sorted(extra)]
    if set(nb.metadata.get("language_info", {})) - {"name"}:
        found.append("language_info beyond its name (the Python version of the machine that built it)")
    return found


def images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


BUILT_TWICE = "08_explorer"  # executed (twice) by test_two_builds_of_a_seeded_notebook_are_byte_identical


def assert_ran_through(nb, name: str) -> None:
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert images(nb) > 0, f"{name} drew no figure (is matplotlib's inline backend active?)"
    assert not volatile_parts(nb), f"{name}: the build left volatile parts: {volatile_parts(nb)}"


@pytest.mark.parametrize("path", [p for p in PATHS if p.stem != BUILT_TWICE],
                         ids=[i for i in IDS if i != BUILT_TWICE])
def test_notebook_executes_top_to_bottom_with_small_parameters(path, build):
    full = os.environ.get("TSE_NOTEBOOK_FULL") == "1"
    # build.execute gives the kernel the small switch, the repository on its path, this interpreter first on PATH
    # (the python3 kernelspec launches `python`) and no GPU; it raises CellExecutionError, with the failing cell
    # and its traceback, on the first error, and returns the notebook normalised as the build writes it. It runs
    # the notebook in a process of its own, killed and run again if it stalls.
    assert_ran_through(build.execute(path, small=not full), path.name)


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_notebook_pair_is_in_sync_as_jupytext_sees_it(path):
    ipynb = path.with_suffix(".ipynb")
    assert ipynb.is_file(), f"{ipynb.name} is missing: run `python notebooks/build.py {path.stem[:2]}`"
    paired, source = jupytext.read(ipynb), jupytext.read(path)
    assert [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in paired.cells] == \
        [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in source.cells], (
        f"{ipynb.name} and {path.name} differ: run `python notebooks/build.py {path.stem[:2]}`")
    # what `jupytext --sync` would write from the .ipynb is the committed .py, header included
    assert jupytext.writes(paired, fmt="py:percent") == path.read_text(), (
        f"{ipynb.name}'s jupytext metadata or cells do not reproduce {path.name}: rebuild it")


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_committed_notebook_shows_its_figures_and_nothing_volatile(path):
    ipynb = path.with_suffix(".ipynb")
    if not ipynb.is_file():
        pytest.fail(f"{ipynb.name} is missing: run `python notebooks/build.py {path.stem[:2]}`")
    nb = jupytext.read(ipynb)
    assert images(nb) > 0, f"{ipynb.name} has no figure: it was saved without outputs; rebuild it"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, f"{ipynb.name} stores an error output"
    assert not volatile_parts(nb), f"{ipynb.name}: {volatile_parts(nb)}"
    assert ipynb.stat().st_size < MAX_NOTEBOOK_BYTES, f"{ipynb.name} is {ipynb.stat().st_size / 1e6:.1f} MB"
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    views = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    for view in views:  # a widget shown in the notebook has its state stored, so a renderer can draw it
        assert view.data["application/vnd.jupyter.widget-view+json"]["model_id"] in state, ipynb.name


def test_the_explorer_notebook_stores_its_widgets_with_the_plot_they_show():
    nb = jupytext.read(NOTEBOOKS / "08_explorer.ipynb")
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    outputs = [m for m in state.values() if m["model_name"] == "OutputModel"]
    assert outputs and any("image/png" in o.get("data", {}) for m in outputs for o in m["state"]["outputs"])


def test_ipynb_files_are_tracked_not_ignored():
    patterns = [line.strip() for line in (NOTEBOOKS / ".gitignore").read_text().splitlines()]
    assert not any(p in ("*.ipynb", "/*.ipynb", "**/*.ipynb") for p in patterns)


def text_outputs(nb) -> list[tuple[int, list[str]]]:
    """(cell index, its outputs as text) per code cell: printed streams, the plain text of results and displays,
    error values. Figures' PNG bytes are left out: they depend on the machine's fonts and libraries."""
    return [(i, [o.text if o.output_type == "stream" else o.get("data", {}).get("text/plain", o.get("evalue", ""))
                 for o in cell.outputs])
            for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]


@pytest.mark.skipif(os.environ.get(OUTPUTS_SWITCH) != "1",
                    reason=f"rebuilds the notebook at its default sizes (up to a minute each); set {OUTPUTS_SWITCH}=1")
@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_committed_outputs_are_those_of_a_fresh_build(path, build, tmp_path):
    # the pair tests pass a committed .ipynb whose numbers no longer match the code; a fresh build, through
    # build.py's own entry point into a temporary directory, catches them
    assert build.main([path.stem, "--out", str(tmp_path)]) == 0
    stored, fresh = (jupytext.read(p) for p in (path.with_suffix(".ipynb"), tmp_path / f"{path.stem}.ipynb"))
    for (i, old), (_, new) in zip(text_outputs(stored), text_outputs(fresh), strict=True):
        diff = "".join(difflib.unified_diff("".join(old).splitlines(True), "".join(new).splitlines(True),
                                            "committed", "fresh build"))
        assert old == new, (f"{path.stem}.ipynb, cell {i}: the committed outputs are stale; run "
                            f"`python notebooks/build.py {path.stem[:2]}`\n{diff}")


def test_two_builds_of_a_seeded_notebook_are_byte_identical(build, tmp_path):
    # notebook 08: seeded, and it stores widget state, whose random model ids the build renumbers. Its execution
    # test is this one (the builds run it top to bottom at the small sizes, as the test above runs the others)
    for out in ("a", "b"):
        assert build.main([BUILT_TWICE[:2], "--small", "--out", str(tmp_path / out)]) == 0
    first, second = (tmp_path / out / f"{BUILT_TWICE}.ipynb" for out in ("a", "b"))
    assert first.read_bytes() == second.read_bytes()
    assert_ran_through(jupytext.read(first), first.name)


LINUX_PROC = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads processes from Linux's /proc")


def _kernel_gone(pid: int, within_s: float = 15.0) -> bool:
    """The process ``pid`` has exited (or is a zombie nobody reaped) within ``within_s``; Linux's /proc."""
    stat = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.2)
    return False


def _notebook(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "stall.py"
    path.write_text("# %%\n" + source)
    return path


@LINUX_PROC
def test_a_stalled_notebook_is_killed_with_its_kernel_and_run_again_from_scratch(build, tmp_path, capsys):
    # a cell that never returns in the first run stands for nbclient's stall: the build must stop that run, its
    # kernel included, and start a fresh one, which finishes
    pids, marker = tmp_path / "pids", tmp_path / "stalled-once"
    path = _notebook(tmp_path, f"import os, time\nwith open({str(pids)!r}, 'a') as f:\n    print(os.getpid(), file=f)\n"
                               f"if not os.path.exists({str(marker)!r}):\n    open({str(marker)!r}, 'w').close()\n"
                               f"    time.sleep(600)\nprint('finished')\n")
    nb = build.execute(path, small=True, timeout_s=10, attempts=3)  # 3: a slow machine may take 10 s for a run
    assert nb.cells[0].outputs[0].text == "finished\n"
    assert "stall.py: stalled after 10 s (attempt 1 of 3)" in capsys.readouterr().err
    stalled, *_, finished = (int(p) for p in pids.read_text().split())
    assert stalled != finished, "the run that finished must have a kernel of its own"
    assert _kernel_gone(stalled), "the stalled run's kernel outlived it"


@LINUX_PROC
def test_a_stalled_runs_kernel_is_killed_by_the_build_not_left_to_notice_its_parent_gone(build, tmp_path):
    # a process leading its own group, as jupyter_client starts kernels, and with no parent poller of its own
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    try:
        (tmp_path / "kernel.pid").write_text(str(proc.pid))
        build._kill_group(tmp_path / "kernel.pid")
        assert proc.wait(timeout=10) == -9
    finally:
        proc.kill()
    build._kill_group(tmp_path / "never-written.pid")  # a run killed before its kernel was up: nothing to kill


@LINUX_PROC
def test_a_notebook_that_stalls_in_every_attempt_stops_the_build_with_stalled(build, tmp_path):
    # 5 s: time for the kernel to come up, so the build kills it (one killed while starting is left to its own
    # parent poller, which misses a parent killed that early where orphans go to a subreaper, not to init)
    pid = tmp_path / "pid"
    path = _notebook(tmp_path, f"import os, time\nwith open({str(pid)!r}, 'w') as f:\n    print(os.getpid(), file=f)\n"
                               f"time.sleep(600)\n")
    t0 = time.monotonic()
    with pytest.raises(build.Stalled, match=r"stall\.py: stalled in every attempt \(1, 5 s each\)"):
        build.execute(path, small=True, timeout_s=5, attempts=1)
    assert time.monotonic() - t0 < 20
    assert _kernel_gone(int(pid.read_text()), within_s=0.5), "the build left the stalled kernel running"


def test_channel_waits_are_sliced_so_a_message_one_wait_missed_is_taken_by_the_next(build):
    import asyncio
    from queue import Empty

    calls = []

    def channel(replies):  # get_msg: each call waits its full timeout unless its reply is ready
        async def get_msg(timeout=None):
            calls.append(timeout)
            reply = replies.pop(0) if replies else None
            if reply is None:
                await asyncio.sleep(timeout)
                raise Empty
            return reply
        return get_msg

    # the first wait misses the message (it sleeps its whole timeout); the slice after it takes it: 0.05 s, not 300
    t0 = time.monotonic()
    assert asyncio.run(build.sliced(channel([None, "reply"]), 0.05)(timeout=300)) == "reply"
    assert time.monotonic() - t0 < 5 and calls == [0.05, 0.05]
    calls.clear()  # no message: Empty at the caller's deadline, no wait longer than a slice
    t0 = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(build.sliced(channel([]), 0.05)(timeout=0.2))
    assert 0.2 <= time.monotonic() - t0 < 2 and max(calls) <= 0.05 and len(calls) >= 4
    calls.clear()  # timeout=None: waits, a slice at a time, until a message comes
    assert asyncio.run(build.sliced(channel([None, None, "late"]), 0.01)(timeout=None)) == "late"
    assert calls == [0.01, 0.01, 0.01]
    calls.clear()  # timeout=0: one look
    with pytest.raises(Empty):
        asyncio.run(build.sliced(channel([]), 0.05)(timeout=0))
    assert calls == [0]


def test_a_failing_cell_reaches_the_caller_as_nbclients_error(build, tmp_path):
    path = _notebook(tmp_path, "raise ValueError('no such ensemble')\n")
    nbclient = pytest.importorskip("nbclient")
    with pytest.raises(nbclient.exceptions.CellExecutionError) as err:
        build.execute(path, small=True)
    assert (err.value.ename, err.value.evalue) == ("ValueError", "no such ensemble")
    assert "no such ensemble" in str(err.value)


@pytest.mark.skipif(os.name != "posix", reason="Unix sockets: elsewhere the kernel keeps TCP")
def test_the_kernel_talks_over_private_unix_sockets_and_leaves_none_behind(build, tmp_path, capfd):
    # ipykernel >= 7 warns on every kernel start that TCP on localhost is unencrypted; the build's kernels use Unix
    # sockets in a private directory instead, with an absolute path (the kernel runs in notebooks/, the build
    # elsewhere: a relative one put them in notebooks/ and the kernel never answered)
    before = set(NOTEBOOKS.iterdir())
    path = _notebook(tmp_path, "from ipykernel.kernelapp import IPKernelApp\napp = IPKernelApp.instance()\n"
                               "import os\nprint(app.transport, os.path.isabs(app.ip))\n")
    nb = build.execute(path, small=True)
    assert nb.cells[0].outputs[0].text == "ipc True\n"
    assert "without encryption" not in capfd.readouterr().err
    assert set(NOTEBOOKS.iterdir()) == before, "the kernel's sockets were left in notebooks/"
