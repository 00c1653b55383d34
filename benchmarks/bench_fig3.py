"""Benchmark: ``python -m simulations fig3`` at defaults against a plain per-trial numpy loop of the same
workload (``benchmarks/fig3_reference.py``: every metric of fig3's CSV), each a whole process (start-up
included), run alternately; beside them the loop as first written (``--original``: ten of the metrics, before
fig3 gained the literature's), so that ratios stay comparable with earlier sessions'.

    python benchmarks/bench_fig3.py [--rounds 3] [--trials 1000] [--scale 10]
    python benchmarks/bench_fig3.py --trials 5000 --rounds 3 --scale 10    # #13's workload (about 14 minutes)

Prints, per command, the median wall time and peak memory, the speed-up ratios, the engine's fixed cost (the
same command at one trial and one layer: the ceiling on any speed-up), the share of time spent in
eigenvalue work (measured in-process), the streaming check (``scale`` x the trials: time and peak-memory
ratios), LAPACK's eigenvalues alone of as many matrices as the run has steps, on one thread and on every core
(the floor of any engine that calls LAPACK per matrix), timed in every round right after the engine and compared
with it round by round, the cost of the split-form chain against the same chain
on whole matrices (``benchmarks/bench_split_chain.py``) and the accuracy check (engine means against the
reference means, in standard errors, on every metric both compute). Absolute seconds vary on a shared machine;
the ratios, taken in one invocation, are what to read.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the in-process measurements import the project from this checkout
# The child's own peak: VmHWM, the high-water mark of its address space. Not getrusage's ru_maxrss: Linux carries
# that across exec from the image it replaced, and subprocess starts the child with vfork, in the parent's
# address space, so ru_maxrss reported this process's own peak whenever it was the larger (3x the trials' true
# peak once, after the in-process measurements below had held a gigabyte).
PEAK = ("import atexit, resource, runpy, sys\n"
        "def peak():\n"
        "    try:\n"
        "        with open('/proc/self/status') as f:\n"
        "            return next(int(l.split()[1]) for l in f if l.startswith('VmHWM:'))\n"
        "    except (OSError, StopIteration):\n"
        "        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "atexit.register(lambda: print('PEAK_KB', peak(), file=sys.stderr))\n"
        "sys.argv = {argv!r}; runpy.{runner}({target!r}, run_name='__main__')")


def run(argv: list[str], *, module: bool) -> tuple[float, float]:
    """Wall seconds and peak resident MB of one whole process."""
    runner, target = ("run_module", argv[0]) if module else ("run_path", argv[0])
    code = PEAK.format(argv=argv, runner=runner, target=target)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"benchmark command failed: {' '.join(argv)}\n{proc.stderr}")
    peak = next(int(l.split()[1]) for l in proc.stderr.splitlines() if l.startswith("PEAK_KB"))
    return wall, peak / 1024


def eigen_share(trials: int) -> tuple[float, float]:
    """In-process: the share of the engine's and of the reference's compute time spent in eigenvalue calls."""
    import numpy as np
    import torch

    spent = {"engine": 0.0, "reference": 0.0}

    def timed(fn, key):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[key] += time.perf_counter() - t
        return wrapper

    from simulations.engine.config import Fig3Config
    from simulations.engine.runner import default_workers
    from simulations.studies.fig3 import simulate_fig3

    from theory import _lockstep

    eigvals, eigvalsh = torch.linalg.eigvals, torch.linalg.eigvalsh
    kernel, symmetric = _lockstep.top_eigenvalue, _lockstep.symmetric_max_eigenvalue
    torch.linalg.eigvals, torch.linalg.eigvalsh = timed(eigvals, "engine"), timed(eigvalsh, "engine")
    _lockstep.top_eigenvalue, _lockstep.symmetric_max_eigenvalue = timed(kernel, "engine"), timed(symmetric, "engine")
    try:
        t = time.perf_counter()
        simulate_fig3(Fig3Config(trials=trials, device="cpu"), progress=False)
        engine_wall = time.perf_counter() - t
    finally:
        torch.linalg.eigvals, torch.linalg.eigvalsh = eigvals, eigvalsh
        _lockstep.top_eigenvalue, _lockstep.symmetric_max_eigenvalue = kernel, symmetric
    workers = default_workers(torch.device("cpu"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import fig3_reference

    np_eigvals, np_norm = np.linalg.eigvals, np.linalg.norm
    np.linalg.eigvals = timed(np_eigvals, "reference")
    np.linalg.norm = lambda x, ord=None, **k: (timed(np_norm, "reference") if ord == 2 else np_norm)(x, ord, **k)
    argv, sys.argv = sys.argv, ["fig3_reference.py", "--trials", str(trials)]
    try:
        t = time.perf_counter()
        fig3_reference.main()
        ref_wall = time.perf_counter() - t
    finally:
        sys.argv, np.linalg.eigvals, np.linalg.norm = argv, np_eigvals, np_norm
    return spent["engine"] / (workers * engine_wall), spent["reference"] / ref_wall


def lapack_batches(trials: int, depth: int = 24, n: int = 32, beta: float = 4.0) -> list:
    """``trials x depth`` matrices like fig3's (C = Q^T P Q of softmax(beta Z), (n-1) x (n-1)), in batches of
    1000, drawn once: the input of :func:`lapack_alone`."""
    import theory as T
    from theory._attention import _restrict

    g = T.make_generator(0)
    block = 1000
    return [_restrict(T.softmax_attention((min(block, trials * depth - start),), n, beta=beta, generator=g))
            .contiguous() for start in range(0, trials * depth, block)]


def lapack_alone(batches: list) -> tuple[float, float]:
    """Seconds LAPACK (``torch.linalg.eigvals``) takes for the eigenvalues alone of ``batches``
    (:func:`lapack_batches`; drawn beforehand, not timed): the floor for any engine that calls LAPACK once per
    matrix. Twice: on one thread (torch's batched eigvals, like numpy's, solves one matrix at a time whatever its
    thread count), and on every core, the batches shared by one worker thread per core as the engine shares its
    blocks (eigvals releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.linalg.eigvals(batches[0][:100])  # warm-up
        t = time.perf_counter()
        for C in batches:
            torch.linalg.eigvals(C)
        one = time.perf_counter() - t
        with ThreadPoolExecutor(max_workers=threads) as pool:  # one per thread torch may use, as the engine's
            t = time.perf_counter()
            list(pool.map(torch.linalg.eigvals, batches))
            every = time.perf_counter() - t
    finally:
        torch.set_num_threads(threads)
    return one, every


def eigvals_threads(count: int = 10000, n: int = 32, beta: float = 4.0) -> dict[str, tuple[float, float]]:
    """Microseconds per matrix of torch's and numpy's batched ``eigvals`` on ``count`` softmax matrices, on one
    thread and on every thread torch may use: whether a library's batched call itself uses both cores (it does
    not: each solves one matrix at a time, so LAPACK "alone", as either library calls it, runs on one core)."""
    import numpy as np
    import torch

    import theory as T

    from threadpoolctl import threadpool_limits  # numpy's OpenBLAS: torch.set_num_threads does not reach it

    P = T.softmax_attention((count,), n, beta=beta, generator=T.make_generator(0))
    threads = torch.get_num_threads()
    out = {}
    try:
        for name, solve in (("torch", torch.linalg.eigvals), ("numpy", lambda x: np.linalg.eigvals(x.numpy()))):
            per = []
            for k in (1, threads):
                torch.set_num_threads(k)
                with threadpool_limits(limits=k, user_api="blas"):
                    solve(P[:100])  # warm-up
                    t = time.perf_counter()
                    solve(P)
                    per.append((time.perf_counter() - t) / count * 1e6)
            out[name] = tuple(per)
    finally:
        torch.set_num_threads(threads)
    return out


def print_eigvals_threads() -> None:
    """Prints :func:`eigvals_threads`, a line per library."""
    import torch

    for name, (one, every) in eigvals_threads().items():
        print(f"{name} batched eigvals, 10000 softmax matrices 32 x 32: {one:.1f} us per matrix on one thread, "
              f"{every:.1f} on {torch.get_num_threads()} threads ({one / every:.2f}x)")


# metrics whose |z| is another's (a constant shift or 1 minus it): r - 1 and r, t_sim and t_div, ...
SAME_Z = ("r_minus_1", "r_estimate_minus_1", "r_bound_minus_1", "t_sim")


def accuracy(csv_path: Path, ref_path: Path) -> tuple[float, int, int]:
    """Largest |engine mean - reference mean| in combined standard errors, over steps and every metric both
    computed; the number of (step, metric) pairs compared, and of those whose |z| no other pair repeats."""
    from simulations.engine.stats import standard_error
    from simulations.output.writing import read_csv

    ref = json.loads(ref_path.read_text())["stats"]
    worst, compared, distinct = 0.0, 0, 0
    for r in read_csv(csv_path):
        if r["metric"] not in ref:
            continue
        se_e = standard_error(r["ci_low"], r["ci_high"], r["count"])
        m, se = ref[r["metric"]]["mean"][r["step"]], ref[r["metric"]]["se"][r["step"]]
        if se_e > 0 and se > 0:
            worst = max(worst, abs(r["mean"] - m) / (se_e ** 2 + se ** 2) ** 0.5)
            compared += 1
            distinct += r["metric"] not in SAME_Z
    return worst, compared, distinct


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--scale", type=int, default=10, help="streaming check: this many times the trials")
    p.add_argument("--lapack-threads", action="store_true",
                   help="only measure whether torch's and numpy's batched eigvals use more than one thread")
    a = p.parse_args()
    if a.lapack_threads:
        print_eigvals_threads()
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench_fig3_"))
    engine = ["simulations", "fig3", "--trials", str(a.trials), "--out", str(tmp / "engine"), "--no-progress"]
    reference = [str(ROOT / "benchmarks" / "fig3_reference.py"), "--trials", str(a.trials),
                 "--out", str(tmp / "ref.json")]
    # the same command at the smallest workload: start-up, imports, plot, write and exit, next to no compute
    fixed = ["simulations", "fig3", "--trials", "1", "--depth", "1", "--out", str(tmp / "fixed"), "--no-progress"]
    # the loop as first written computed ten of the metrics (before fig3 gained the literature's): kept beside it
    original = reference[:-2] + ["--original", "--out", str(tmp / "ref_original.json")]
    times = {"engine": [], "reference": [], "original": [], "fixed": []}
    peaks = {"engine": [], "reference": [], "original": [], "fixed": []}
    batches = lapack_batches(a.trials)
    lapack = []  # (one thread, every core) per round, timed right after the round's engine run
    for i in range(a.rounds):  # alternate, so drifts in machine load hit all alike
        for name, argv, module in (("engine", engine, True), ("reference", reference, False),
                                   ("original", original, False), ("fixed", fixed, True)):
            wall, peak = run(argv, module=module)
            times[name].append(wall)
            peaks[name].append(peak)
            print(f"round {i + 1}: {name:9s} {wall:6.2f} s  peak {peak:7.1f} MB", flush=True)
            if name == "engine":
                lapack.append(lapack_alone(batches))
                print(f"round {i + 1}: LAPACK alone {lapack[-1][0]:6.2f} s on one thread, {lapack[-1][1]:6.2f} s "
                      f"on every core", flush=True)
    del batches
    te, tr = statistics.median(times["engine"]), statistics.median(times["reference"])
    to = statistics.median(times["original"])
    # the same ratios paired by round (each round's loop over that round's engine), as LAPACK's below: the load
    # drifts between rounds, so a ratio of medians may divide times from different rounds
    paired = {k: [r / e for e, r in zip(times["engine"], times[k])] for k in ("reference", "original")}
    print("paired by round: the loop " + ", ".join(f"{x:.2f}x" for x in paired["reference"])
          + f" (median {statistics.median(paired['reference']):.2f}x); the original loop "
          + ", ".join(f"{x:.2f}x" for x in paired["original"]) + f" (median {statistics.median(paired['original']):.2f}x)")
    print(f"\nfig3 at T = {a.trials} (whole commands, median of {a.rounds}): engine {te:.2f} s, "
          f"per-trial numpy loop of the same metrics (all of fig3's CSV) {tr:.2f} s -> speed-up {tr / te:.2f}x (#13's target at "
          f"T = 5000: >= 4x); the loop's original ten metrics {to:.2f} s -> {to / te:.2f}x")
    tf = statistics.median(times["fixed"])
    print(f"fixed cost (fig3 --trials 1 --depth 1: start-up, imports, plot, write, exit): {tf:.2f} s, so the "
          f"engine's compute is {te - tf:.2f} s; even with no compute at all the ratio could not pass "
          f"{tr / tf:.2f}x")
    print(f"peak memory: engine {statistics.median(peaks['engine']):.0f} MB, "
          f"reference {statistics.median(peaks['reference']):.0f} MB, "
          f"original reference {statistics.median(peaks['original']):.0f} MB")
    one, every = (statistics.median(x) for x in zip(*lapack))
    r_one = [e / l[0] for e, l in zip(times["engine"], lapack)]
    r_every = [e / l[1] for e, l in zip(times["engine"], lapack)]
    print(f"LAPACK's eigenvalues alone of the same {a.trials * 24} matrices (in-process, drawn beforehand, "
          f"median of {a.rounds}): {one:.2f} s on one thread, {every:.2f} s on every core; the whole engine command "
          f"takes {statistics.median(r_one):.2f}x ({min(r_one):.2f}-{max(r_one):.2f}x) and "
          f"{statistics.median(r_every):.2f}x ({min(r_every):.2f}-{max(r_every):.2f}x) that, paired by round "
          f"(target < 1)")
    print_eigvals_threads()
    share_e, share_r = eigen_share(a.trials)
    print(f"eigenvalue work (the kernels for delta with its error estimate, sigma and the stable rank, and any "
          f"LAPACK call): "
          f"{100 * share_e:.0f}% of the engine's compute time, {100 * share_r:.0f}% of the loop's")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_split_chain import measure

    split, whole = measure()
    print(f"split-form chain against the same chain on whole matrices (in-process, one block of 250 trials, one "
          f"thread): {split * 1e3:.0f} ms against {whole * 1e3:.0f} ms, ratio {split / whole:.2f} (bound 1)")
    big = engine.copy()
    big[big.index("--trials") + 1] = str(a.trials * a.scale)
    big[big.index("--out") + 1] = str(tmp / "engine_big")
    wall_big, peak_big = run(big, module=True)
    print(f"streaming: {a.scale}x the trials took {wall_big / te:.2f}x the time (bound 12x) and "
          f"{peak_big / statistics.median(peaks['engine']):.2f}x the peak memory (bound 1.3x)")
    worst, compared, distinct = accuracy(tmp / "engine" / "fig3.csv", tmp / "ref.json")
    verdict = "agree" if worst < 4.5 else "DISAGREE"
    print(f"accuracy: engine and reference means {verdict} within sampling error: worst |z| = {worst:.2f} over "
          f"{compared} (step, metric) pairs, {distinct} of them with a |z| no other pair repeats (bound 4.5)")


if __name__ == "__main__":
    main()
