"""``python -m simulations {fig1,fig2,fig3,fig4,fig5,real,train,all} [flags]``: run, plot and write figures.

Every config field is a flag (``--tokens``, ``--width``, ``--depth``, ``--trials``, ``--seed``, ``--device``,
``--dtype``, ``--chunk``, ``--rng-block`` and the figure's own). Bad input gives a one-line error and exit
status 2, before anything is written.

``python -m simulations findings --from DIR --readme README.md`` stores the findings of the runs in DIR under
docs/findings/ and rewrites README's findings blocks from them (:mod:`simulations.readme`).

``python -m simulations sweep {fig2,fig3,fig5} --beta 0.5,1,2 --tokens 16,32 ... --out DIR`` runs a figure over
the grid of its comma-listed flags and writes DIR/sweep.csv, sweep.json and sweep.png
(:mod:`simulations.studies.sweep`; ``python -m simulations sweep fig3 -h`` lists the flags).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

from .engine.checkpoint import Checkpoint
from .engine.memory import check_memory
from .engine.config import ATTENTIONS, RunConfig, _positive_int
from .engine.runner import resolve_device
from .registry import FIGURES, IN_ALL
from .output.writing import check_out_dir, make_out_dir, write_result
from .studies.fig3_findings import c6_not_a_theorem, no_rate_text, rate_factor_text

# the figures whose CUDA runs take larger batches than a CPU's (_config), with their CUDA rng_block
_CUDA_BLOCKS = ", ".join(f"{n}: {c['rng_block']}" for n, f in FIGURES.items()
                         if (c := getattr(f.config, "cuda_batches", {})))
SHARED_HELP = {
    "tokens": "number of tokens n", "width": "feature width d", "depth": "number of layers L",
    "trials": "Monte Carlo trials T",
    "seed": "seed of the run's torch.Generator",
    "device": "auto (CUDA if present), cpu or cuda", "dtype": "float32 or float64",
    "chunk": "trials spread over the workers and checkpointed at once; results do not depend on it, except on CUDA "
             f"without --rng-block, where a --chunk below the CUDA block ({_CUDA_BLOCKS}) is also taken as "
             "--rng-block, which changes the random numbers",
    "rng_block": "trials per random-number block, computed as one batch (bounds memory; the random numbers depend on "
                 "it; chunk must be a multiple, and without --chunk is the default rounded up to one)",
    "text": "text file, one sequence per line ('#' lines skipped)",
    "max_tokens": "truncation length including [CLS]/[SEP]",
    "scope": "content: drop [CLS]/[SEP]/padding; all: drop padding only",
    "beta": "inverse temperature of the scores softmax(beta Z) (softmax, causal, sinkhorn <= 8, banded)",
    "attention": "the attention ensemble of the chain", "alpha": "dirichlet: rows Dirichlet(alpha)",
    "window": "banded: each token attends to its neighbours |i - j| <= window",
    "model": "all-MiniLM-L6-v2 (bundled) or a local Hugging Face model directory: config.json, weights "
             "(safetensors or weights-only .bin), tokenizer; read offline, never its own code",
    "weights": "the chain's weights W: gaussian (entries N(0, 1/d)), orthogonal (Haar), or auto: orthogonal for "
               "symmetric attention (C6 is then a theorem per step), gaussian otherwise",
    "deescalate_at": "where (I - tau Pi) acts in a block: residual (on X + SA(X), before the norm), attention (on "
                     "SA(X) alone) or output (after the norm)",
    "heads": "attention heads per block (width must be divisible by it)",
    "ffn": "the feed-forward layer's hidden width, as a multiple of the width",
    "tau": "de-escalation strength: (I - tau Pi) removes tau of the mean token (C11; 1 removes it all)",
    "taus": "the de-escalation strengths compared, one curve each (space-separated)",
    "arch": "post, pre (pre-norm), deescalated (post-norm with (I - tau Pi)), cb (post-norm with context "
            "broadcasting), pre-cb (pre-norm with it)",
}
# the checkout's stored findings (an editable install, as the README's commands make): found from any directory;
# installed elsewhere (site-packages holds no docs/), docs/findings under the current directory
FINDINGS_STORE = (Path(__file__).resolve().parents[1] / "docs" / "findings"
                  if (Path(__file__).resolve().parents[1] / "pyproject.toml").is_file() else Path("docs/findings"))
# where a field's default is a name standing for another value, say which (the help shows the value otherwise)
DEFAULT_SHOWN = {"text": "simulations/studies/data/corpus.txt"}
# a sweep's points keep the config's batches on CUDA too (no _config there), so its chunk never sets the block
SWEEP_HELP = {"chunk": "trials spread over the workers and checkpointed at once (results do not depend on it; a "
                       "sweep uses the same batches on CUDA as on the CPU)"}
CHOICES = {"device": ("auto", "cpu", "cuda"), "dtype": ("float32", "float64"),
           "attention": ATTENTIONS, "arch": ("post", "pre", "deescalated", "cb", "pre-cb"),
           "weights": ("auto", "gaussian", "orthogonal"), "scope": ("content", "all"),
           "pool": ("cls", "mean"), "deescalate_at": ("residual", "attention", "output")}


def _add_config_flags(p: argparse.ArgumentParser, cfg_cls: type[RunConfig], *, defaults: bool) -> None:
    """``cfg_cls``'s fields as flags; ``defaults=False`` (``all``): unset flags keep each figure's own default,
    and the help says so instead of naming ``cfg_cls``'s."""
    helps = {**SHARED_HELP, **getattr(cfg_cls, "HELP", {})}  # a study's own meaning first (train, real)
    for f in dataclasses.fields(cfg_cls):
        default = f.default if defaults else "each figure's own"
        shown = DEFAULT_SHOWN.get(f.name, default) if defaults else default  # in the help only
        flag = "--" + f.name.replace("_", "-")
        kind = type(f.default)
        if kind is tuple:
            p.add_argument(flag, type=float, nargs="+", default=default if defaults else None,
                           help=f"{helps.get(f.name, f.name)} (default "
                                f"{' '.join(map(str, default)) if defaults else default})")
        elif f.name in (cuda := getattr(cfg_cls, "cuda_batches", {})) or f.name == "chunk":
            # filled in by _config: by device, and chunk by a given --rng-block, so it must tell given from unset
            on_cuda = f"; {cuda[f.name]} on CUDA" if f.name in cuda else ""
            p.add_argument(flag, type=kind, default=None,
                           help=f"{helps.get(f.name, f.name)} (default {default}{on_cuda})")
        else:
            p.add_argument(flag, type=kind, default=default if defaults else None, choices=CHOICES.get(f.name),
                           help=f"{helps.get(f.name, f.name)} (default {shown})")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag gives one line (no usage block): ``prog: error: what was wrong``."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    # the module doc as plain text: reST's ``code`` and :mod:`name` read as themselves in a terminal
    plain = re.sub(r":\w+:`([^`]+)`", r"\1", __doc__).replace("``", "")
    parser = _Parser(prog="python -m simulations", description=plain,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="figure", required=True, parser_class=_Parser,
                                metavar="{" + ",".join([*FIGURES, "all", "findings", "sweep"]) + "}")
    for name, fig in FIGURES.items():
        p = sub.add_parser(name, help=fig.config.__doc__.strip().splitlines()[0])
        _add_config_flags(p, fig.config, defaults=True)
        p.add_argument("--out", default="results", help="output directory (default results/)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p = sub.add_parser("all", help=f"{', '.join(IN_ALL)} at their defaults (shared flags override them)")
    _add_config_flags(p, RunConfig, defaults=False)
    p.add_argument("--out", default="results", help="output directory (default results/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    sub.add_parser("sweep", help="run a figure over a grid of flag values: python -m simulations sweep fig3 "
                                 "--beta 0.5,1,2 --tokens 16,32 --out DIR (see python -m simulations sweep fig3 -h)",
                   add_help=False)
    p = sub.add_parser("findings", help="store runs' findings and render README's findings blocks from them")
    p.add_argument("--from", dest="source", default=None,
                   help="run outputs (DIR/<name>.json) whose findings are copied into --store first (this writes "
                        "there, with or without --readme)")
    p.add_argument("--store", default=str(FINDINGS_STORE),
                   help="findings the README is rendered from, one <record>.json each (default this checkout's "
                        "docs/findings/, wherever the command runs)")
    p.add_argument("--readme", default=None,
                   help="rewrite this file's <!-- findings:RECORD --> blocks (default: print the rendered text)")
    return parser


def _valid_sizes(given: dict) -> bool:
    """Whether the given rng_block and chunk pass the config's own check: the GPU's batches are derived only from
    valid sizes, and an invalid one goes on to the config, which names what is wrong."""
    try:
        for k in ("rng_block", "chunk"):
            _positive_int(k, given.get(k, 1))
    except ValueError:
        return False
    return True


def _config(fig, args: argparse.Namespace):
    """The figure's config from the flags that were given (``all`` leaves unset flags at each figure's default)."""
    names = [f.name for f in dataclasses.fields(fig.config)]
    given = {k: v for k, v in vars(args).items() if k in names and v is not None}
    if "taus" in given:
        given["taus"] = tuple(given["taus"])
    batches = getattr(fig.config, "cuda_batches", {})
    if batches and _valid_sizes(given) and resolve_device(given.get("device", fig.config.device)).type == "cuda":
        if "rng_block" not in given:  # a smaller --chunk alone is one block; a larger one must be a multiple
            small = given.get("chunk", math.inf) < batches["rng_block"]
            given["rng_block"] = given["chunk"] if small else batches["rng_block"]
        block = given["rng_block"]
        given.setdefault("chunk", _multiple_of(block, batches["chunk"]))
    if "rng_block" in given and "chunk" not in given and _valid_sizes(given):
        given["chunk"] = _chunk_for_block(fig.config, given["rng_block"])
    return fig.config(**given)


def _chunk_for_block(cfg_cls: type[RunConfig], block: int) -> int:
    """The chunk of a run given ``--rng-block`` but no ``--chunk``: the default chunk rounded up to a multiple of
    the block. Results do not depend on the chunk, so a quoted command (which leaves it out) reproduces its run;
    the default itself refused every block that does not divide it."""
    return _multiple_of(block, next(f.default for f in dataclasses.fields(cfg_cls) if f.name == "chunk"))


def _multiple_of(block: int, chunk: int) -> int:
    """``chunk`` rounded up to a multiple of ``block`` (at least one block)."""
    return block * max(1, -(-chunk // block))


class Interrupted(Exception):
    """SIGINT or SIGTERM during a run: the last finished chunk is in the checkpoint."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_SECOND_SIGNAL_EXITS = False  # set by main for the process `python -m simulations` runs in (not for a caller's)


def _raise_interrupted(signum, frame):  # noqa: ARG001 -- a signal handler's signature
    # the blocks already running cannot be cancelled: the run stops once they finish (seconds at the defaults,
    # minutes for very large n), so say so. A second Ctrl-C while the first unwinds (torch's threads, the
    # checkpoint's atomic write) aborted the process in 1 of 4 tries: it now ends the process at once, cleanly
    # (every file is written atomically: the finished chunks stay saved), or, where main runs inside a caller's
    # process, is ignored until main returns
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, _stop_at_once if _SECOND_SIGNAL_EXITS else signal.SIG_IGN)
    print(f"{signal.Signals(signum).name}: stopping once the blocks in progress finish"
          + ("; again to stop at once (finished chunks stay saved)" if _SECOND_SIGNAL_EXITS else ""),
          file=sys.stderr, flush=True)
    raise Interrupted(signum)


def _stop_at_once(signum, frame):  # noqa: ARG001
    print(f"{signal.Signals(signum).name} again: stopped at once; the chunks finished before the first are saved: "
          "run the same command to continue", file=sys.stderr, flush=True)
    os._exit(128 + signum)


def _import_for_the_end() -> None:
    """Imports only the end of a run needs, done in a thread while it computes: mostly GIL-free kernels then, so
    the 0.6 s of these imports overlap with them (measured: 0.92-0.98x the whole command at T = 5000, paired)."""
    import matplotlib.pyplot  # noqa: F401
    import scipy.special  # noqa: F401

    from .output import plotting  # noqa: F401


def _written_by_this(fig, cfg, out: str) -> bool:
    """Whether ``out`` holds ``fig``'s CSV, PNG and JSON, the JSON written by this very code, config and device:
    the same command would write the same numbers (results are a pure function of these), so `all` skips it."""
    from .engine.checkpoint import code_hash
    from .readme import load_record

    base = os.path.join(out, fig.name)
    try:
        meta = load_record(base + ".json")  # a JSON object, else ValueError
    except ValueError:
        return False
    if not all(os.path.isfile(base + ext) and os.path.getsize(base + ext) > 0 for ext in (".csv", ".png")):
        return False  # missing, or emptied since (never by this code: it writes whole files)
    want = json.loads(json.dumps(cfg.to_dict(), default=str))
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    return (all(config.get(k) == v for k, v in want.items())
            and (meta.get("versions") or {}).get("code") == code_hash()
            and meta.get("device") == str(resolve_device(cfg.device)))


def run_figure(fig, cfg, out: str, *, progress: bool | None, checkpoint: Checkpoint | None = None) -> dict:
    """Simulate (resuming from a checkpoint of this very command if there is one), plot, write atomically.
    ``checkpoint``: the run's own (:meth:`Checkpoint.for_run`), given where the caller must name its file."""
    import matplotlib

    matplotlib.use("Agg")  # the CLI writes figures, never shows them (the library leaves the backend alone)
    # what only the end of a run needs (the plot, the confidence intervals) is imported while it computes
    warm = threading.Thread(target=_import_for_the_end, daemon=True)
    warm.start()
    if checkpoint is None:
        checkpoint = Checkpoint.for_run(out, fig.name, cfg.to_dict())
    result = fig.simulate(cfg, progress=progress, checkpoint=checkpoint)
    warm.join()
    import matplotlib.pyplot as plt

    from .output.plotting import plot_panels

    if fig.findings is not None:
        result.findings = fig.findings(result)
    figure = plot_panels(result, fig.panels(result), fig.title(cfg))
    paths = write_result(result, figure, out)
    plt.close(figure)
    checkpoint.remove()
    return {"result": result, "paths": paths}


def sweep_parser(figure: str) -> argparse.ArgumentParser:
    """``sweep FIG``: every flag of FIG takes a comma list (one value fixes it, several sweep it)."""
    from .studies.sweep import UNSWEEPABLE

    fig = FIGURES[figure]
    p = _Parser(prog=f"python -m simulations sweep {figure}",
                description=f"Run {figure} at every point of the grid of the comma lists given; write DIR/sweep.csv, "
                            "DIR/sweep.json and DIR/sweep.png (phase diagrams).")
    for f in dataclasses.fields(fig.config):
        default = " ".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
        how = "one value (not swept)" if f.name in UNSWEEPABLE else "a comma list"
        p.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=str, default=None,
                       help=f"{SWEEP_HELP.get(f.name, SHARED_HELP.get(f.name, f.name))}: {how} (default {default})")
    p.add_argument("--out", default="results/sweep", help="output directory (default results/sweep/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def sweep_command(argv: list[str]) -> int:
    """``sweep FIG --flag v1,v2 ...``: the grid's points on the engine, then sweep.csv/json/png."""
    from .studies.sweep import SWEEPABLE_FIGURES, cleanup, parse_grid, partly_unused, run_sweep
    from .studies.sweep_findings import common, render_sweep_findings, sweep_findings

    prog = "python -m simulations sweep"
    if argv[:1] in (["-h"], ["--help"]):
        print(f"usage: {prog} {{{','.join(SWEEPABLE_FIGURES)}}} --FLAG V1,V2 ... [--out DIR]\n\n"
              f"Run a figure at every point of the grid of its comma-listed flags (one value fixes a flag, several "
              f"sweep it);\nwrite DIR/sweep.csv, sweep.json and sweep.png. Each figure's flags: {prog} FIG --help")
        return 0
    if not argv or argv[0] not in SWEEPABLE_FIGURES:
        got = repr(argv[0]) if argv else "nothing"
        print(f"{prog}: error: the first argument must be one of {', '.join(SWEEPABLE_FIGURES)}; got {got}",
              file=sys.stderr)
        return 2
    figure = argv[0]
    try:
        args = sweep_parser(figure).parse_args(argv[1:])
    except SystemExit as exc:  # argparse has printed its one line
        return int(exc.code or 0)
    given = {k: v for k, v in vars(args).items() if k not in ("out", "no_progress") and v is not None}
    order = {a.split("=")[0][2:].replace("-", "_"): i for i, a in reversed(list(enumerate(argv))) if a.startswith("--")}
    given = dict(sorted(given.items(), key=lambda kv: order.get(kv[0], len(argv))))  # axes in the order given
    if "chunk" not in given and given.get("rng_block", "").strip().isdigit() and int(given["rng_block"]) > 0:
        given["chunk"] = str(_chunk_for_block(FIGURES[figure].config, int(given["rng_block"])))  # as a plain run
    try:
        check_out_dir(args.out)
        grid = parse_grid(figure, FIGURES[figure].config, given)
        for point in grid.points:
            resolve_device(grid.config(point).device)
        make_out_dir(args.out)  # last: nothing is created for a bad flag
    except ValueError as exc:
        print(f"{prog} {figure}: error: {exc}", file=sys.stderr)
        return 2
    for line in partly_unused(grid):
        print(f"{prog} {figure}: warning: {line}", file=sys.stderr)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _raise_interrupted)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .output.sweep_plot import plot_sweep
    from .output.writing import write_sweep

    t0 = time.perf_counter()
    try:
        results = run_sweep(grid, FIGURES[figure].simulate, args.out, progress=False if args.no_progress else None)
    except ValueError as exc:
        print(f"{prog} {figure}: error: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"{prog} {figure}: interrupted ({exc}); finished points and chunks are saved in {args.out}/.sweep/: "
              "run the same command to continue", file=sys.stderr)
        return 128 + exc.signum
    fixed = ", ".join(f"{k} = {v}" for k, v in grid.fixed.items())
    # T and the seed where every point has the same and no flag fixed them (a swept one is on the axes instead)
    trials, seed = common(results, "trials"), common(results, "seed")
    title = (f"sweep of {figure} over {' x '.join(f'{k} ({len(v)})' for k, v in grid.swept.items())}"
             f"{'; ' + fixed if fixed else ''}"
             f"{'' if 'trials' in grid.fixed or trials is None else f'; T = {trials} trials per point'}"
             f"{'' if 'seed' in grid.fixed or seed is None else f', seed {seed}'}")
    figure_png = plot_sweep(figure, grid.swept, results, title)
    findings = sweep_findings(figure, grid, results)
    paths = write_sweep(figure, grid.swept, grid.fixed, results, figure_png, args.out, time.perf_counter() - t0,
                        findings=findings)
    plt.close(figure_png)
    cleanup(args.out, results)
    reused = sum(r.get("reused", False) for r in results)
    kept = f" ({reused} kept from the interrupted run before, the rest computed)" if reused else ""
    print(f"sweep {figure}: {len(results)} points{kept} in {time.perf_counter() - t0:.1f} s -> {paths['png']}, "
          ".csv, .json")
    print("  findings: " + render_sweep_findings(findings).replace("\n", "\n  "))
    return 0


def main(argv: list[str] | None = None, *, own_process: bool = False) -> int:
    """The ``python -m simulations`` command; returns its exit status. The signal handlers a run installs are put
    back as they were when it returns (a caller's own Ctrl-C handling survives an in-process call).
    ``own_process``: the process is this command's own (``python -m simulations``), so a second Ctrl-C may end it
    at once; in a caller's process it is ignored until the run has stopped."""
    global _SECOND_SIGNAL_EXITS
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    _SECOND_SIGNAL_EXITS = own_process
    try:
        return _main(argv)
    finally:
        _SECOND_SIGNAL_EXITS = False
        for s, handler in previous.items():
            signal.signal(s, handler)


def _main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "sweep":
        return sweep_command(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.figure == "findings":
        return findings_command(args)
    progress = False if args.no_progress else None
    try:
        check_out_dir(args.out)
        names = list(IN_ALL) if args.figure == "all" else [args.figure]
        configs = []
        for n in names:
            try:
                configs.append((FIGURES[n], _config(FIGURES[n], args)))
            except ValueError as exc:  # in `all`, say which figure's config it is (all shares flags across them)
                raise ValueError(f"{n}: {exc}" if len(names) > 1 else str(exc)) from None
        for fig, cfg in configs:
            device = resolve_device(cfg.device)  # cuda without a GPU fails here, before anything runs or is written
            if isinstance(cfg, RunConfig) and device.type == "cpu":  # the Monte Carlo figures (not real, train)
                check_memory(fig.name, [cfg], f"{fig.name} at these sizes")  # a traceback from an allocation before
            for k in getattr(cfg, "unused_params", list)():  # accepted, but say it changes nothing (real, train: none)
                print(f"python -m simulations {fig.name}: warning: --{k.replace('_', '-')} changes nothing: "
                      f"{cfg.why_unused(k)}", file=sys.stderr)
        make_out_dir(args.out)  # last: nothing is created for a bad flag
    except ValueError as exc:
        print(f"python -m simulations: error: {exc}", file=sys.stderr)
        return 2
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _raise_interrupted)
    for fig, cfg in configs:
        t0 = time.perf_counter()
        if len(configs) > 1 and _written_by_this(fig, cfg, args.out):  # `all` continued after an interruption
            print(f"{fig.name}: already written in {args.out} by this code with this config; skipped (remove "
                  f"{os.path.join(args.out, fig.name + '.json')} to run it again)")
            continue
        checkpoint = None
        try:
            checkpoint = Checkpoint.for_run(args.out, fig.name, cfg.to_dict())
            done = run_figure(fig, cfg, args.out, progress=progress, checkpoint=checkpoint)
        except ValueError as exc:
            print(f"python -m simulations {fig.name}: error: {exc}", file=sys.stderr)
            return 2
        except Interrupted as exc:
            # the file is named by a hash of the config; before the first chunk has finished there is none
            if checkpoint is not None and checkpoint.path.is_file():
                saved = f"finished chunks are saved in {checkpoint.path}: run the same command to continue"
            else:
                saved = "no chunk had finished, so nothing was saved"
            print(f"python -m simulations {fig.name}: interrupted ({exc}); {saved}", file=sys.stderr)
            return 128 + exc.signum
        result = done["result"]
        trials = f"{cfg.trials} trial{'s' * (cfg.trials != 1)}"
        print(f"{fig.name}: {trials} on {result.device} in {time.perf_counter() - t0:.1f} s -> "
              f"{done['paths']['png']}, .csv, .json")
        for line in summarize_checks(result):
            print(f"  {line}")
        if result.findings:
            from .readme import provenance, render_findings, run_config

            text = render_findings(fig.name, result.findings,
                                   provenance(fig.name, run_config(result.config, result.device)))
            print("  findings: " + text.replace("\n", "\n  "))
    return 0


def findings_command(args: argparse.Namespace) -> int:
    """``findings``: copy run findings into the store, then print or write the README blocks rendered from it."""
    from .readme import collect_findings, readme_blocks, rendered_store, update_readme, write_records

    # every input (runs, store, README) is read and rendered before anything is written: a damaged one is an
    # error that leaves the store and the README as they were
    stale: list[str] = []
    try:
        records = collect_findings(args.source, stale) if args.source is not None else {}
        if args.readme is not None:
            changed = update_readme(args.readme, args.store, records)  # writes the records too, once all render
            blocks = ", ".join(readme_blocks(open(args.readme).read()))
        else:
            rendered = rendered_store(args.store, records)
            write_records(args.store, records)
    except ValueError as exc:
        print(f"python -m simulations findings: error: {exc}", file=sys.stderr)
        return 2
    for path in stale:  # stored all the same: a long run (train) is often worth keeping across unrelated changes
        print(f"findings: warning: {path} was written by other code than this checkout's (or by a version that did "
              f"not record it): its numbers may not be what this code gives; run it again to be sure",
              file=sys.stderr)
    for name in records:
        print(f"findings: {args.store}/{name}.json (from the runs in {args.source})")
    if args.readme is not None:
        print(f"findings: {args.readme} {'updated' if changed else 'already up to date'} (blocks: {blocks})")
    else:
        for name, text in rendered.items():
            print(f"<!-- findings:{name} -->\n{text}\n<!-- /findings:{name} -->")
    return 0


def summarize_checks(result) -> list[str]:
    c = result.checks
    lines = []
    if "C2_identity_max_rel_error" in c and not c["C2_steps_compared"]:
        lines.append("C2 identity: no sampled step to compare (t_div(X) = 0 in every one)")
    elif "C2_identity_max_rel_error" in c:
        lines.append(f"C2 identity against a full-form recomputation of the step: max relative error "
                     f"{c['C2_identity_max_rel_error']:.2g} over {c['C2_steps_compared']} sampled steps")
    if "C6_holds_every_step" in c:
        verdict = "held in every" if c["C6_holds_every_step"] else "FAILED in some"
        lines.append(f"C6 bound (odds form) {verdict} one of {c['C6_steps_checked']} steps (min relative slack "
                     f"{c['C6_min_odds_slack']:.3g}, tolerance {c['C6_tolerance']:.0e})")
    elif "C6_violation_share" in c and not c["C6_steps_checked"]:
        lines.append("C6 bound checked in no step (t_div = 0 after the first layer: every odds-form check undefined)")
    elif "C6_violation_share" in c:
        why = c6_not_a_theorem(result.config.get("attention", "softmax"))
        lines.append(f"C6 bound (not a theorem here; {why}) failed in {100 * c['C6_violation_share']:.1f}% of "
                     f"{c['C6_steps_checked']} steps")
    lines.extend(c.get("summary", []))  # a figure's own written summary (the real-model study has one)
    lines.extend(c.get("test_acc_table", []))  # the training study's accuracy table
    if c.get("delta_uncertain", {}).get("count"):
        u = c["delta_uncertain"]
        lines.append(f"delta: {u['count']} values ({100 * u['share']:.1f}%) are uncertain beyond {u['tolerance']:g} "
                     "relative (nearly defective attention; first-order error estimate)")
    if "fitted_rate" in c and not math.isfinite(c["fitted_rate"]["log_t_div_slope"]):
        lines.append(no_rate_text(c["fitted_rate"]))
    elif "fitted_rate" in c:
        f = c["fitted_rate"]
        lines.append(f"fitted linear rate over layers {f['layers'][0]}-{f['layers'][1]}: mean ln t_div falls "
                     f"{-f['log_t_div_slope']:.4g} per layer (95% CI {-f['ci'][1]:.4g} to {-f['ci'][0]:.4g}), "
                     f"t_div x {rate_factor_text(f, 4)} per layer")
    if c.get("excluded_values"):
        lines.append("left out (undefined, below precision or beyond the float range): "
                     + ", ".join(f"{m} {n}" for m, n in c["excluded_values"].items()))
    return lines
