"""The notebooks in ``notebooks/`` stay thin and keep running (STYLE rule 9).

Each notebook's source of truth is its jupytext percent-format ``.py`` file. Its first code cell is tagged
``parameters`` and picks small sizes when ``TSE_NOTEBOOK_SMALL=1``; the execution test sets that switch, runs
every cell in a fresh ``python3`` kernel (nbclient) and fails on the first cell that raises. Set
``TSE_NOTEBOOK_FULL=1`` to execute them at their default sizes instead (about a minute each at most).

Skipped when the notebook packages (jupytext, nbclient, ipykernel) are missing; the ``test`` extra installs them.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
IDS = [p.stem for p in PATHS]
SMALL_SWITCH = "TSE_NOTEBOOK_SMALL"
CELL_TIMEOUT_S = 300
FORBIDDEN = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


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


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_notebook_executes_top_to_bottom_with_small_parameters(path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    full = os.environ.get("TSE_NOTEBOOK_FULL") == "1"
    # The kernel inherits this environment: the small switch, the repository on its path (no install needed),
    # this interpreter first on PATH (the python3 kernelspec launches `python`), and no GPU surprises.
    monkeypatch.setenv(SMALL_SWITCH, "0" if full else "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES", ""))
    nb = jupytext.read(path)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError, with the failing cell and traceback, on the first error
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images > 0, f"{path.name} drew no figure (is matplotlib's inline backend active?)"
