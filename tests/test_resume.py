"""Interrupted runs lose nothing: kill a real ``python -m simulations`` mid-run, run it again, compare."""

import hashlib
import importlib.util
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["fig3", "--tokens", "12", "--width", "12", "--depth", "6", "--trials", "3000", "--chunk", "250",
        "--device", "cpu", "--no-progress"]


def _run(out: Path, *extra: str, args: list[str] = ARGS) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulations", *args, *extra, "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted")
    assert _run(out).returncode == 0
    return out


@pytest.fixture(scope="module")
def earlier_result(tmp_path_factory) -> Path:
    """A complete result of another seed, which an interrupted run in the same folder must not destroy."""
    out = tmp_path_factory.mktemp("earlier")
    assert _run(out, "--seed", "7", "--trials", "250").returncode == 0
    return out


def _checkpoint(args: list[str], out: Path) -> Path:
    """The checkpoint file of ``python -m simulations *args --out out`` (named by a hash of its command)."""
    from simulations.cli import _config, build_parser
    from simulations.engine.checkpoint import Checkpoint
    from simulations.registry import FIGURES

    parsed = build_parser().parse_args([*args, "--out", str(out)])
    return Checkpoint.for_run(out, parsed.figure, _config(FIGURES[parsed.figure], parsed).to_dict()).path


def _chunks_done(checkpoint: Path) -> int:
    try:
        with np.load(checkpoint) as z:
            return int(z["chunks_done"])
    except (OSError, ValueError, KeyError, EOFError):
        return 0


def _interrupt_after_two_chunks(args: list[str], out: Path, signum: int) -> tuple[subprocess.Popen, str]:
    """Start ``python -m simulations *args --out out``, send ``signum`` once its checkpoint holds two chunks;
    (the process, its stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "simulations", *args, "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoint = _checkpoint(args, out)
    deadline = time.monotonic() + 120
    while _chunks_done(checkpoint) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    return proc, err


@pytest.mark.skipif(not __import__("torch").cuda.is_available() or importlib.util.find_spec("cupy") is None,
                    reason="needs a CUDA GPU and CuPy (without the GPU kernels 30,000 trials take minutes)")
def test_a_killed_run_on_the_gpu_continues_and_ends_identical(tmp_path):
    # on CUDA too: blocks are deterministic there (the eigenvalue kernels bitwise so), so an interrupted run that
    # resumes writes the same CSV as one that never stopped
    cuda = [{"cpu": "cuda", "3000": "30000"}.get(a, a) for a in ARGS]  # more chunks: the GPU is quick
    full = _run(tmp_path / "full", args=cuda)
    assert full.returncode == 0, full.stderr
    out = tmp_path / "out"
    _interrupt_after_two_chunks(cuda, out, signal.SIGINT)
    again = _run(out, args=cuda)
    assert again.returncode == 0 and "resuming after" in again.stderr, again.stderr
    assert (out / "fig3.csv").read_bytes() == (tmp_path / "full" / "fig3.csv").read_bytes()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_a_killed_run_continues_from_its_last_chunk_and_ends_identical(tmp_path, uninterrupted, earlier_result,
                                                                       signum):
    out = tmp_path / "out"
    shutil.copytree(earlier_result, out)  # a previous complete result (another seed) it must not destroy
    before = {name: (out / name).read_bytes() for name in ("fig3.csv", "fig3.json", "fig3.png")}
    proc, err = _interrupt_after_two_chunks(ARGS, out, signum)
    checkpoint = _checkpoint(ARGS, out)
    assert proc.returncode in (128 + signum, -signum)
    if signum != signal.SIGKILL:
        assert "run the same command to continue" in err and "Traceback" not in err
        assert f"saved in {checkpoint}:" in err  # the message names the file that holds them
    assert {name: (out / name).read_bytes() for name in before} == before  # nothing half-written or lost
    assert _chunks_done(checkpoint) >= 2

    again = _run(out)
    assert again.returncode == 0, again.stderr
    assert "resuming after" in again.stderr
    assert (out / "fig3.csv").read_bytes() == (uninterrupted / "fig3.csv").read_bytes()
    assert not checkpoint.exists()
    assert not list(out.glob(".*.tmp"))


def test_a_checkpoint_of_another_config_is_ignored(tmp_path):
    # each config has its own file (below); and a file found under a config's name that another command wrote
    # (renamed, copied) is still not read: its key is checked. (Whole killed runs of another config: the next test)
    from simulations.engine.checkpoint import Checkpoint
    from simulations.engine.config import Fig3Config

    mine = Checkpoint.for_run(tmp_path, "fig3", Fig3Config(device="cpu").to_dict())
    other = Checkpoint.for_run(tmp_path, "fig3", Fig3Config(device="cpu", seed=3).to_dict())
    other.write(chunks_done=np.array(2))
    assert other.read() is not None
    other.path.rename(mine.path)
    assert mine.read() is None


def test_a_run_of_another_config_in_the_same_folder_leaves_a_checkpoint_alone(tmp_path, uninterrupted):
    # every config of a figure shared DIR/.fig3.checkpoint.npz: a run of another config overwrote it, then removed
    # it once its own results were written, and the interrupted run started again from nothing
    out = tmp_path / "out"
    _interrupt_after_two_chunks(ARGS, out, signal.SIGINT)
    checkpoint = _checkpoint(ARGS, out)
    saved = checkpoint.read_bytes()
    other = [a if a != "3000" else "500" for a in ARGS] + ["--seed", "5"]
    assert _run(out, args=other).returncode == 0
    assert checkpoint.read_bytes() == saved and _chunks_done(checkpoint) >= 2
    again = _run(out)
    assert again.returncode == 0 and f"resuming after {_chunks_done_text(saved)}" in again.stderr, again.stderr
    assert (out / "fig3.csv").read_bytes() == (uninterrupted / "fig3.csv").read_bytes()
    assert not checkpoint.exists() and not list(out.glob(".fig3.checkpoint*"))


def _chunks_done_text(saved: bytes) -> str:
    import io

    with np.load(io.BytesIO(saved)) as z:
        done = int(z["chunks_done"])
    return f"{done} finished chunk{'s' if done != 1 else ''}"


def test_checkpoints_of_two_configs_are_two_files(tmp_path):
    from simulations.engine.checkpoint import Checkpoint
    from simulations.engine.config import Fig3Config

    a, b = Fig3Config(device="cpu").to_dict(), Fig3Config(device="cpu", seed=1).to_dict()
    paths = {Checkpoint.for_run(tmp_path, "fig3", c).path for c in (a, b)}
    assert len(paths) == 2 and all(p.parent == tmp_path and p.name.startswith(".fig3.checkpoint.") for p in paths)
    assert Checkpoint.for_run(tmp_path, "fig3", a) == Checkpoint.for_run(tmp_path, "fig3", dict(a))  # stable


def _source_tree(root: Path) -> list[Path]:
    """A small copy of the layout code_hash reads: both packages, a subpackage, the C and CUDA kernels."""
    files = {"theory/__init__.py": "x = 1\n", "theory/_lockstep.c": "int f(void);\n", "theory/_hqr.cu": "// k\n",
             "simulations/__init__.py": "", "simulations/engine/checkpoint.py": "y = 2\n",
             "simulations/studies/fig3.py": "z = 3\n"}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return [root / name for name in files]


def test_the_code_hash_changes_with_every_source_of_theory_and_simulations(tmp_path):
    # it used to read simulations/theory/*.py and simulations/simulations/*.py, which do not exist: the hash of
    # nothing, so a checkpoint written by other code was resumed
    from simulations.engine.checkpoint import ROOT as REPO, code_hash

    empty = hashlib.sha256(b"").hexdigest()
    assert code_hash() == code_hash(REPO) != empty
    sources = _source_tree(tmp_path)
    before = code_hash(tmp_path)
    assert before != empty
    for path in sources:  # an edit anywhere, subpackages and kernels included
        text = path.read_text()
        path.write_text(text + "# edited\n")
        assert code_hash(tmp_path) != before, path.relative_to(tmp_path)
        path.write_text(text)
    assert code_hash(tmp_path) == before
    sources[4].rename(sources[4].with_name("renamed.py"))  # same bytes under another name
    assert code_hash(tmp_path) != before
    sources[4].with_name("renamed.py").rename(sources[4])
    (tmp_path / "theory" / "notes.txt").write_text("not code")  # neither source nor kernel: no part of the hash
    assert code_hash(tmp_path) == before


def test_a_damaged_checkpoint_is_ignored_and_the_run_starts_afresh(tmp_path):
    # a truncated checkpoint (a full disk, a copy cut short) raised zipfile.BadZipFile out of the run
    from simulations.cli import _config, build_parser, main
    from simulations.engine.checkpoint import Checkpoint
    from simulations.registry import FIGURES

    tiny = ["fig3", "--tokens", "4", "--width", "4", "--depth", "2", "--trials", "8", "--rng-block", "4",
            "--chunk", "4", "--device", "cpu", "--no-progress"]
    assert main([*tiny, "--out", str(tmp_path / "fresh")]) == 0
    out = tmp_path / "out"
    cfg = _config(FIGURES["fig3"], build_parser().parse_args(tiny))
    checkpoint = Checkpoint.for_run(out, "fig3", cfg.to_dict())
    checkpoint.write(chunks_done=np.array(1), x=np.arange(1000.0))  # this very command's key
    data = checkpoint.path.read_bytes()
    for damaged in (b"PK\x03\x04" + bytes(300), b"", data[: len(data) // 2]):  # garbage, empty, truncated
        checkpoint.path.write_bytes(damaged)
        assert checkpoint.read() is None and checkpoint.load() is None
    assert main([*tiny, "--out", str(out)]) == 0  # with the truncated one in place
    assert (out / "fig3.csv").read_bytes() == (tmp_path / "fresh" / "fig3.csv").read_bytes()
    assert not checkpoint.path.exists()


def test_a_checkpoint_is_keyed_by_the_device_the_run_goes_to_not_the_flag(monkeypatch):
    # --device auto on a GPU machine and on a CPU one wrote the same key: a run begun on a GPU and resumed on a
    # CPU would have mixed two random streams
    import torch

    from simulations.engine.checkpoint import Checkpoint

    config = {"device": "auto", "trials": 8, "seed": 0}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    on_gpu = Checkpoint.for_run(".", "fig3", config).key
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    on_cpu = Checkpoint.for_run(".", "fig3", config).key
    assert on_gpu != on_cpu
    assert Checkpoint.for_run(".", "fig3", {**config, "device": "cpu"}).key != on_cpu  # the flag is kept too
    assert Checkpoint.for_run(".", "fig3", {**config, "device": "cuda"}).key  # no GPU: the run itself refuses


def _interrupt_in_process_after_two_chunks(cfg, checkpoint, monkeypatch) -> None:
    """Run fig3 for ``cfg`` with ``checkpoint`` until it has saved two chunks, then stop it as Ctrl-C would."""
    from simulations.studies.fig3 import simulate_fig3

    save, saves = checkpoint.save, []

    def save_then_stop(*args, **kwargs):
        save(*args, **kwargs)
        saves.append(1)
        if len(saves) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        simulate_fig3(cfg, progress=False, checkpoint=checkpoint)
    monkeypatch.setattr(checkpoint, "save", save)


def test_a_resumed_run_reports_the_fallbacks_and_seconds_of_the_chunks_before_it(tmp_path, monkeypatch):
    # the JSON's LAPACK fallbacks were counted around the call in this process and its elapsed seconds timed in it:
    # a resumed run reported those of the chunks after its interruption only
    import threading

    from simulations.engine.checkpoint import Checkpoint
    from simulations.engine.config import Fig3Config
    from simulations.studies.fig3 import simulate_fig3
    from theory import _lockstep

    if not _lockstep.available():
        pytest.skip(f"no kernel: {_lockstep.status()}")
    real, lock, calls = _lockstep.top_eigenvalue, threading.Lock(), [0]

    def failing(Cn, errors=False):  # the kernel's answer with two matrices of each call marked as not converged
        re, im, ok, *err = real(Cn, errors=errors)
        re[[0, 3]], ok[[0, 3]] = 123.0, False
        with lock:
            calls[0] += 1
        return (re, im, ok, *err)

    monkeypatch.setattr(_lockstep, "top_eigenvalue", failing)
    cfg = Fig3Config(tokens=6, width=5, depth=3, trials=32, rng_block=8, chunk=8, device="cpu")
    whole = simulate_fig3(cfg, progress=False)
    assert calls[0] == 4 * 3  # a call per block and layer: two fallbacks each
    assert whole.checks["eigen_solver"]["lapack_fallbacks"] == 2 * calls[0]

    checkpoint = Checkpoint.for_run(tmp_path, "fig3", cfg.to_dict())
    _interrupt_in_process_after_two_chunks(cfg, checkpoint, monkeypatch)
    arrays = checkpoint.read()
    assert int(arrays["chunks_done"]) == 2 and 0 < float(arrays["seconds"]) < 1000
    checkpoint.write(**{**arrays, "seconds": np.array(1000.0)})  # as if the first process had run for long
    resumed = simulate_fig3(cfg, progress=False, checkpoint=checkpoint)
    assert resumed.checks["eigen_solver"]["lapack_fallbacks"] == whole.checks["eigen_solver"]["lapack_fallbacks"]
    assert resumed.elapsed_s > 1000
    assert resumed.rows == whole.rows


def test_a_checkpoint_resumes_only_a_run_that_keeps_per_trial_values_alike(tmp_path, monkeypatch):
    # the key did not hold keep_trials: a run asking for per-trial values resumed one that kept none, and its
    # trial_values raised
    from simulations.engine.checkpoint import Checkpoint
    from simulations.engine.config import Fig3Config
    from simulations.studies.fig3 import simulate_fig3

    cfg = Fig3Config(tokens=5, width=4, depth=2, trials=24, rng_block=6, chunk=6, device="cpu")
    checkpoint = Checkpoint.for_run(tmp_path, "fig3", cfg.to_dict())
    _interrupt_in_process_after_two_chunks(cfg, checkpoint, monkeypatch)
    resumed = simulate_fig3(cfg, keep_trials=True, progress=False, checkpoint=checkpoint)
    assert resumed.stats.trial_values("t_div").shape == (24, 3)  # every trial's values: started afresh
