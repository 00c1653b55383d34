r"""A small, honest training replication: does de-escalation ([YZ], C11) or context broadcasting ([CB], C12)
help a small ViT on scikit-learn's 8 x 8 digits?

Data: ``sklearn.datasets.load_digits`` (1797 images, 10 classes, shipped with scikit-learn, no download), one
fixed stratified split (``split_seed``) into 1297 training and 500 test images; a validation split of
``val_size`` images is carved from the training images for the learning-rate search and never touches the
test images. Pixels are standardised with the training images' mean and standard deviation.

Model: the 8 x 8 image is cut into ``patch`` x ``patch`` patches (16 tokens of 4 pixels at ``patch = 2``),
each linearly embedded to width $d$, plus a learned position embedding, plus a class token (``pool = cls``) or
mean pooling (``pool = mean``); then $L$ blocks of :mod:`simulations.engine.blocks` (the same ``build_stack`` as the
figures, so every architecture shares one implementation and, for one seed, the same initial weights), a final
LayerNorm and a linear head. Variants (``archs``): ``post``, ``pre``, ``deesc<tau>`` (post-norm with
$(I - \tau\Pi)$ at ``deescalate_at``), ``cb`` (post-norm with $CB(z) = (z + \Pi z)/2$ on the FFN output) and
``pre-cb`` (pre-norm with CB on the FFN branch: [CB]'s own setting, a pre-norm ViT).

Protocol, identical for every variant and depth: AdamW, linear warm-up then cosine decay, ``epochs`` epochs,
gradient clipping at ``clip``; the learning rate is picked from ``lrs`` by validation accuracy of one search run
per rate (seed ``seed + 1000``, trained on the training images minus the validation split); then ``seeds``
runs (seeds ``seed``, ``seed + 1``, ...) train on all training images with that rate and are scored once on
the test images. Recorded: training loss per epoch, test accuracy, and $t_{sim}$ of every block output (step 0:
the embedded tokens $X_0$; step k: block k's output) on the test images, at initialisation and after training.
A run whose loss, weights or test logits turn non-finite is recorded as diverged: its accuracy and trained $t_{sim}$
are NaN, left out of every mean and counted where the mean is quoted; the search never prefers a rate that
diverged to one that finished (where every rate diverged, it takes the smallest).

Context broadcasting is judged against the block it modifies (``cb`` against ``post``, ``pre-cb`` against
``pre``), paired by seed: for one seed both start from the same weights and see the same batches, so the
per-seed difference of test accuracy removes the spread the seed itself causes (each variant at the rate its
own search chose).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

import theory as T

from ..engine.blocks import build_stack
from ..engine.checkpoint import Checkpoint
from ..engine.config import _positive_int
from ..engine.runner import resolve_device
from ..engine.result import FigureResult
from ..engine.stats import StreamingStats

__all__ = ["TrainConfig", "DigitViT", "load_split", "parse_variant", "simulate_train", "train_panels", "train_title",
           "accuracy_table", "train_findings", "render_train_findings"]

CLASSES = 10


def parse_variant(name: str) -> tuple[str, float]:
    """``post`` -> ("post", 0), ``deesc0.5`` -> ("deescalated", 0.5), ``pre``, ``cb``, ``pre-cb`` likewise."""
    if name in ("post", "pre", "cb", "pre-cb"):
        return name, 0.0
    if name.startswith("deesc"):
        try:
            tau = float(name[5:])
        except ValueError:
            tau = math.nan
        if math.isfinite(tau):
            return "deescalated", tau
    raise ValueError(f"archs must be a comma-separated list of post, pre, cb, pre-cb, deesc<tau> (e.g. deesc0.5); "
                     f"got {name!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Train a small ViT on sklearn's 8x8 digits: post, pre, de-escalated and CB blocks, several depths."""

    # the CLI's help for this study's own flags (simulations.cli: shared flags are described there)
    HELP: ClassVar[dict[str, str]] = {
        "archs": "comma-separated variants: post, pre, cb, pre-cb, deesc<tau> (post-norm with (I - tau Pi), e.g. "
                 "deesc0.5)",
        "depths": "numbers of blocks L compared, space-separated", "seeds": "final runs per variant and depth "
        "(seeds seed, seed + 1, ...)", "seed": "the first final run's seed", "lrs": "learning rates searched "
        "(space-separated; the same grid for every variant and depth)", "epochs": "training epochs",
        "warmup_epochs": "epochs of linear learning-rate warm-up", "batch": "training minibatch size (results "
        "depend on it)", "weight_decay": "AdamW weight decay", "clip": "gradient-norm clipping (0: none)",
        "patch": "patch side in pixels: 2 gives 16 tokens of 4 pixels, 4 gives 4 of 16", "pool": "the classifier "
        "reads the [CLS] token (cls) or the tokens' mean (mean)", "samples": "images used (fewer: a stratified "
        "subset, a quick run)", "test_size": "test images", "val_size": "validation images, carved from the training "
        "ones, for the learning-rate search only", "split_seed": "seed of the train/validation/test split",
        "workers": "runs trained at once in separate processes (CPU)"}

    archs: str = "post,pre,deesc1,deesc0.5,cb,pre-cb"  # comma-separated variants (see parse_variant)
    depths: tuple[float, ...] = (6, 12, 24)  # numbers of blocks L (integers; tuple fields arrive as floats)
    seeds: int = 3  # final runs per variant and depth (seeds seed, seed + 1, ...)
    seed: int = 0
    lrs: tuple[float, ...] = (3e-4, 1e-3, 3e-3, 1e-2)  # the grid searched, the same for every variant and depth
    epochs: int = 10
    warmup_epochs: float = 1.0
    batch: int = 64
    weight_decay: float = 0.05
    clip: float = 1.0  # gradient-norm clipping (0: none)
    width: int = 32
    heads: int = 4
    ffn: int = 2  # FFN width multiple
    patch: int = 2  # patch side: 2 -> 16 tokens of 4 pixels, 4 -> 4 tokens of 16 pixels
    pool: str = "cls"  # cls | mean
    deescalate_at: str = "residual"  # residual | attention | output (simulations.engine.blocks)
    samples: int = 1797  # images used (a stratified subset when fewer: quick mode)
    test_size: int = 500
    val_size: int = 297  # carved from the training images, for the learning-rate search only
    split_seed: int = 0
    workers: int = 2  # runs trained at once in separate processes (CPU); each uses its own torch thread(s)
    device: str = "cpu"  # cpu | cuda | auto
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("seeds", "epochs", "batch", "width", "heads", "ffn", "patch", "samples", "test_size",
                     "val_size", "workers"):
            _positive_int(name, getattr(self, name))
        for name in ("seed", "split_seed"):
            _positive_int(name, getattr(self, name), 0)
        depths = tuple(self.depths)
        if not depths or not all(float(L) == int(L) and int(L) >= 1 for L in depths):
            raise ValueError(f"depths must be integers >= 1; got {depths!r}")
        object.__setattr__(self, "depths", tuple(sorted({int(L) for L in depths})))
        lrs = tuple(float(v) for v in self.lrs)
        if not lrs or not all(math.isfinite(v) and v > 0 for v in lrs):
            raise ValueError(f"lrs must be positive numbers; got {self.lrs!r}")
        object.__setattr__(self, "lrs", lrs)
        parts = [v.strip() for v in self.archs.split(",")]
        if "" in parts or len(set(parts)) < len(parts):  # 'post,' or 'post,post': a slip, not two variants
            raise ValueError(f"archs must be a comma-separated list without empty or repeated names; got "
                             f"{self.archs!r}")
        for v in self.variants:
            parse_variant(v)
        if self.width % self.heads:
            raise ValueError(f"width must be divisible by heads; got width = {self.width}, heads = {self.heads}")
        if 8 % self.patch or self.patch == 8:
            raise ValueError(f"patch must be 1, 2 or 4 (it must tile 8 x 8 into >= 2 tokens); got {self.patch}")
        if self.pool not in ("cls", "mean"):
            raise ValueError(f"pool must be cls or mean; got {self.pool!r}")
        if self.deescalate_at not in ("residual", "attention", "output"):
            raise ValueError(f"deescalate_at must be one of residual, attention, output; got {self.deescalate_at!r}")
        if not (0 <= self.warmup_epochs <= self.epochs):
            raise ValueError(f"warmup_epochs must be in [0, epochs = {self.epochs}]; got {self.warmup_epochs}")
        if not (self.weight_decay >= 0 and self.clip >= 0):
            raise ValueError(f"weight_decay and clip must be >= 0; got {self.weight_decay}, {self.clip}")
        if self.samples > 1797 or self.test_size + self.val_size + 2 * CLASSES > self.samples:
            raise ValueError(f"need test_size + val_size + 20 <= samples <= 1797; got samples = {self.samples}, "
                             f"test_size = {self.test_size}, val_size = {self.val_size}")
        if min(self.test_size, self.val_size) < CLASSES:
            raise ValueError(f"test_size and val_size must be >= {CLASSES} (stratified); got "
                             f"{self.test_size}, {self.val_size}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be one of auto, cpu, cuda; got {self.device!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64; got {self.dtype!r}")

    @property
    def variants(self) -> list[str]:
        return [v.strip() for v in self.archs.split(",") if v.strip()]

    @property
    def trials(self) -> int:  # the CLI reports "<trials> trials": here, final runs per variant and depth
        return self.seeds

    @property
    def tokens(self) -> int:
        return (8 // self.patch) ** 2 + (self.pool == "cls")

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- data


def load_split(cfg: TrainConfig) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Standardised images ``(N, 8, 8)`` float32 and labels: ``train``, ``test``, and ``fit``/``val`` (the
    training images split again, for the learning-rate search). A pure function of the config."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X, y = digits.images.astype(np.float64), digits.target.astype(np.int64)  # (1797, 8, 8), (1797,)
    if cfg.samples < len(y):
        X, _, y, _ = train_test_split(X, y, train_size=cfg.samples, stratify=y, random_state=cfg.split_seed)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=cfg.test_size, stratify=y, random_state=cfg.split_seed)
    Xfit, Xval, yfit, yval = train_test_split(Xtr, ytr, test_size=cfg.val_size, stratify=ytr,
                                              random_state=cfg.split_seed + 1)

    def standardise(A: np.ndarray, ref: np.ndarray) -> np.ndarray:
        mu, sd = ref.mean(0), ref.std(0)
        return ((A - mu) / np.where(sd > 0, sd, 1.0)).astype(np.float32)

    # the search sees statistics of its own fitting images only; the final runs those of all training images
    return {"train": (standardise(Xtr, Xtr), ytr), "test": (standardise(Xte, Xtr), yte),
            "fit": (standardise(Xfit, Xfit), yfit), "val": (standardise(Xval, Xfit), yval)}


# ---------------------------------------------------------------- model


class DigitViT(nn.Module):
    """Patch embedding + position embedding (+ class token) -> ``build_stack`` blocks -> LayerNorm -> head."""

    def __init__(self, cfg: TrainConfig, variant: str, depth: int, seed: int, device: torch.device) -> None:
        super().__init__()
        arch, tau = parse_variant(variant)
        dtype = getattr(torch, cfg.dtype)
        p, d = cfg.patch, cfg.width
        n = (8 // p) ** 2
        self.patch, self.pool = p, cfg.pool
        with torch.random.fork_rng(devices=[]):  # the caller's random state is untouched
            torch.manual_seed(seed + 7919)  # differs from the blocks' seed stream, same for every variant
            self.embed = nn.Linear(p * p, d, dtype=dtype)
            self.pos = nn.Parameter(0.02 * torch.randn(1, n + (cfg.pool == "cls"), d, dtype=dtype))
            self.cls = nn.Parameter(0.02 * torch.randn(1, 1, d, dtype=dtype)) if cfg.pool == "cls" else None
            self.norm = nn.LayerNorm(d, dtype=dtype)
            self.head = nn.Linear(d, CLASSES, dtype=dtype)
        self.stack = build_stack(arch, width=d, heads=cfg.heads, ffn=cfg.ffn, depth=depth, seed=seed, dtype=dtype,
                                 device="cpu", tau=tau, deescalate_at=cfg.deescalate_at)
        self.to(device)

    def tokens(self, images: Tensor) -> Tensor:
        """``(b, 8, 8)`` -> ``X_0`` ``(b, n, d)``: embedded patches (+ class token) + position embedding."""
        b, p, m = images.shape[0], self.patch, 8 // self.patch
        patches = images.reshape(b, m, p, m, p).transpose(2, 3).reshape(b, m * m, p * p)  # (b, n, p^2)
        X = self.embed(patches)  # (b, n, d)
        if self.cls is not None:
            X = torch.cat([self.cls.expand(b, -1, -1), X], dim=1)  # (b, n + 1, d)
        return X + self.pos

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, list]:
        """(logits ``(b, 10)``, ``X_0``, block traces)."""
        X0 = self.tokens(images)
        X, traces = self.stack(X0)
        z = X[:, 0] if self.cls is not None else X.mean(dim=1)  # (b, d)
        return self.head(self.norm(z)), X0, traces


def block_similarity(model: DigitViT, images: Tensor) -> np.ndarray:
    """Mean over images of ``t_sim`` of ``X_0`` and of every block output: ``(L + 1,)``."""
    with torch.no_grad():
        _, X0, traces = model(images)
        Xs = torch.stack([X0, *(t.out for t in traces)])  # (L + 1, b, n, d)
        return T.token_similarity(Xs.double()).mean(dim=1).cpu().numpy()


def _accuracy(model: DigitViT, images: Tensor, labels: Tensor) -> float:
    """Share of ``images`` classified as ``labels``; NaN when any logit is not finite (no prediction)."""
    with torch.no_grad():
        logits = model(images)[0]
        if not bool(torch.isfinite(logits).all()):
            return math.nan
        return float((logits.argmax(-1) == labels).double().mean())


# ---------------------------------------------------------------- one run


def train_run(cfg: TrainConfig, variant: str, depth: int, seed: int, lr: float, phase: str,
              progress: bool = False) -> dict:
    """One training run. ``phase = search``: train on ``fit``, score on ``val``; ``final``: train on ``train``,
    score on ``test`` and record t_sim per block at init and after training. A pure function of its arguments
    (on one device)."""
    from tqdm.auto import tqdm

    device = resolve_device(cfg.device)
    data = load_split(cfg)
    (Xa, ya), (Xb, yb) = (data["fit"], data["val"]) if phase == "search" else (data["train"], data["test"])
    Xa, ya, Xb, yb = (torch.as_tensor(a, device=device) for a in (Xa, ya, Xb, yb))
    if cfg.dtype == "float64":
        Xa, Xb = Xa.double(), Xb.double()
    model = DigitViT(cfg, variant, depth, seed, device).train()
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=lr)
    N = len(ya)
    per_epoch = math.ceil(N / cfg.batch)
    total, warm = cfg.epochs * per_epoch, cfg.warmup_epochs * per_epoch

    def schedule(t: int) -> float:  # multiplier of lr after t optimiser steps: linear warm-up, cosine decay
        if t < warm:
            return (t + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (t - warm) / max(total - warm, 1)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    g = torch.Generator().manual_seed(seed)
    out: dict = {"variant": variant, "depth": depth, "seed": seed, "lr": lr, "phase": phase}
    if phase == "final":
        out["t_sim_init"] = block_similarity(model, Xb).tolist()
    losses, diverged = [], False
    loss_fn = nn.CrossEntropyLoss()
    bar = tqdm(range(cfg.epochs), desc=f"{phase} {variant} L={depth} seed={seed} lr={lr:g}", unit="epoch",
               disable=not progress, leave=False)
    for _ in bar:
        if diverged:
            losses.append(math.nan)
            continue
        perm = torch.randperm(N, generator=g).to(device)
        total_loss = 0.0
        for i in range(0, N, cfg.batch):
            idx = perm[i:i + cfg.batch]
            loss = loss_fn(model(Xa[idx])[0], ya[idx])
            if not torch.isfinite(loss):
                diverged = True
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            sched.step()
            total_loss += float(loss.detach()) * len(idx)
        losses.append(math.nan if diverged else total_loss / N)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    # the last optimiser step can leave non-finite weights that no training loss saw: diverged too
    diverged = diverged or not all(bool(torch.isfinite(p).all()) for p in model.parameters())
    # a diverged run has no trained model to score: argmax over NaN logits "predicts" class 0, about 10%, a
    # number that looks like chance but measures nothing. Its accuracy and t_sim are undefined (NaN).
    acc = math.nan if diverged else _accuracy(model, Xb, yb)
    diverged = diverged or math.isnan(acc)
    out["train_loss"], out["diverged"], out["acc"] = losses, diverged, acc
    if phase == "final":
        out["t_sim_trained"] = [math.nan] * (depth + 1)
        if not diverged:
            try:
                out["t_sim_trained"] = block_similarity(model, Xb).tolist()
            except ValueError:  # an inner block's activations overflowed though the logits did not: undefined
                pass
    return out


def _run_job(args: tuple) -> dict:
    cfg_dict, job, progress = args
    torch.set_num_threads(1)  # one process per core: small matrices run fastest single-threaded
    return train_run(TrainConfig(**cfg_dict), *job, progress=progress)


# ---------------------------------------------------------------- the study


def _jobs(cfg: TrainConfig, phase: str, lr_of: dict | None = None) -> list[tuple]:
    """(variant, depth, seed, lr, phase) of every run of a phase, deepest first (the longest start first)."""
    out = []
    for L in sorted(cfg.depths, reverse=True):
        for v in cfg.variants:
            if phase == "search":
                out += [(v, L, cfg.seed + 1000, lr, "search") for lr in cfg.lrs]
            else:
                out += [(v, L, cfg.seed + i, lr_of[(v, L)], "final") for i in range(cfg.seeds)]
    return out


def _job_key(job: tuple) -> str:
    v, L, seed, lr, phase = job
    return f"{phase}/{v}/d{L}/seed{seed}/lr{lr!r}"


def _load_done(checkpoint: Checkpoint | None) -> dict:
    """Finished runs (keyed by :func:`_job_key`) from a checkpoint of this very command, else none."""
    arrays = None if checkpoint is None else checkpoint.read()
    return {} if arrays is None else json.loads(str(arrays["runs"]))


def _save_done(checkpoint: Checkpoint | None, done: dict) -> None:
    if checkpoint is not None:
        checkpoint.write(runs=np.array(json.dumps(done)))


def _run_all(cfg: TrainConfig, jobs: list[tuple], done: dict, *, show: bool, checkpoint: Checkpoint | None,
             desc: str) -> None:
    """Run the jobs not yet in ``done`` (in-process, or ``cfg.workers`` spawned processes); save after each."""
    from tqdm.auto import tqdm

    todo = [j for j in jobs if _job_key(j) not in done]
    with tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=desc, unit="run", disable=not show) as bar:
        if cfg.workers == 1 or len(todo) <= 1:
            for job in todo:
                done[_job_key(job)] = train_run(cfg, *job, progress=show)
                _save_done(checkpoint, done)
                bar.update()
            return
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # fork, not spawn: workers start at once, without importing torch and the study again. Safe here: when
        # it is the CLI, the parent has run no parallel torch op by now (it only loaded the data).
        with ProcessPoolExecutor(max_workers=cfg.workers, mp_context=mp.get_context("fork")) as pool:
            futures = {pool.submit(_run_job, (cfg.to_dict(), job, False)): job for job in todo}
            for fut in as_completed(futures):
                job = futures[fut]
                done[_job_key(job)] = fut.result()
                _save_done(checkpoint, done)
                bar.set_postfix_str(f"{job[4]} {job[0]} L={job[1]} seed={job[2]} lr={job[3]:g}: "
                                    f"acc {done[_job_key(job)]['acc']:.3f}")
                bar.update()


def _run_acc(run: dict) -> float:
    """A run's accuracy; NaN when it diverged (also for records saved before diverged runs went unscored)."""
    return math.nan if run["diverged"] else run["acc"]


def _mean_std(values) -> dict:
    """Mean and std (ddof 1) over the finite values, with how many there were: ``runs``, ``diverged`` (NaN).
    The mean is NaN when none is finite, the std when fewer than two are: no spread is invented."""
    v = np.asarray(values, dtype=np.float64)
    ok = v[np.isfinite(v)]
    return {"mean": float(ok.mean()) if len(ok) else math.nan,
            "std": float(ok.std(ddof=1)) if len(ok) > 1 else math.nan,
            "runs": len(v), "diverged": len(v) - len(ok)}


def _acc_text(a: dict) -> str:
    """``87.1 +- 8.9``; ``87.1`` from one run; ``diverged`` when no run finished; then ``, 2 of 3 diverged``
    when some did. ``a``: mean, std (fractions), and optionally runs, diverged (findings from before they were
    recorded counted no divergence)."""
    k, n = a.get("diverged", 0), a.get("runs", 0)
    if math.isnan(a["mean"]):
        return f"all {n} diverged" if n else "diverged"
    text = f"{100 * a['mean']:.1f}" + ("" if math.isnan(a["std"]) else f" +- {100 * a['std']:.1f}")
    return text + (f", {k} of {n} diverged" if k else "")


def _rows(metric: str, values: np.ndarray, first_step: int = 0) -> tuple[list, int]:
    """Mean and Student-t 95% interval over runs (axis 0) per step, via the figures' statistics."""
    st = StreamingStats(first_step + values.shape[1])
    st.update({metric: torch.as_tensor(values, dtype=torch.float64)}, {metric: first_step})
    return st.rows([metric]), st.excluded[metric]


def accuracy_table(checks: dict, cfg: TrainConfig) -> list[str]:
    """The plain table: test accuracy in %, mean +- std over seeds, and the learning rate the search chose."""
    cells = {v: [f"{_acc_text(checks['test_acc'][v][str(L)])} ({checks['test_acc'][v][str(L)]['lr']:.0e})"
                 for L in cfg.depths] for v in cfg.variants}
    w = max(22, *(len(c) + 2 for row in cells.values() for c in row))
    head = f"{'variant':<10}" + "".join(f"{'L = ' + str(L):>{w}}" for L in cfg.depths)
    lines = [f"test accuracy (%), mean +- std over the {cfg.seeds} seeds' runs that did not diverge (lr chosen "
             f"on validation)", head]
    lines += [f"{v:<10}" + "".join(f"{c:>{w}}" for c in cells[v]) for v in cfg.variants]
    return lines


def simulate_train(cfg: TrainConfig, *, keep_trials: bool = False, progress: bool | None = None,
                   checkpoint: Checkpoint | None = None) -> FigureResult:
    """Run the study for ``cfg`` (see module doc). With a ``checkpoint`` every finished run is saved, and the
    same command continues after the runs it finds there. ``keep_trials``: per-run records in ``checks``."""
    t0 = time.perf_counter()
    device = resolve_device(cfg.device)
    threads = torch.get_num_threads()
    if device.type == "cpu":  # small matrices: one thread per run is fastest, and two threads on a shared
        torch.set_num_threads(1)  # core ran 10-20x slower (measured); parallelism comes from cfg.workers
    try:
        return _simulate(cfg, device, t0, keep_trials=keep_trials, progress=progress, checkpoint=checkpoint)
    finally:
        torch.set_num_threads(threads)


def _simulate(cfg: TrainConfig, device: torch.device, t0: float, *, keep_trials: bool, progress: bool | None,
              checkpoint: Checkpoint | None) -> FigureResult:
    show = sys.stderr.isatty() if progress is None else progress
    done = _load_done(checkpoint)
    if done:
        print(f"train: resuming with {len(done)} finished runs from {checkpoint.path}", file=sys.stderr)
    _run_all(cfg, _jobs(cfg, "search"), done, show=show, checkpoint=checkpoint, desc="train: lr search")
    lr_search, lr_of = {}, {}
    for v in cfg.variants:
        for L in cfg.depths:
            val = {lr: _run_acc(done[_job_key((v, L, cfg.seed + 1000, lr, "search"))]) for lr in cfg.lrs}
            # a diverged rate is never preferred; ties (and every rate diverged): the smaller rate
            lr_of[(v, L)] = max(cfg.lrs, key=lambda lr: (-math.inf if math.isnan(val[lr]) else val[lr], -lr))
            lr_search[f"{v}/d{L}"] = {f"{lr:g}": val[lr] for lr in cfg.lrs}
    finals = _jobs(cfg, "final", lr_of)
    _run_all(cfg, finals, done, show=show, checkpoint=checkpoint, desc="train: final runs")

    rows, excluded = [], {}
    checks: dict = {"lr_search_val_acc": lr_search, "test_acc": {}, "diverged_runs": [], "t_sim_last_block": {}}
    for v in cfg.variants:
        checks["test_acc"][v] = {}
        for L in cfg.depths:
            runs = [done[_job_key((v, L, cfg.seed + i, lr_of[(v, L)], "final"))] for i in range(cfg.seeds)]
            acc = np.array([[_run_acc(r)] for r in runs])  # (seeds, 1), NaN where the run diverged
            series = {"train_loss": (np.array([r["train_loss"] for r in runs]), 1),
                      "t_sim_init": (np.array([r["t_sim_init"] for r in runs]), 0),
                      "t_sim_trained": (np.array([r["t_sim_trained"] for r in runs]), 0),
                      "test_acc": (acc, 0)}
            for q, (values, k0) in series.items():
                new, bad = _rows(f"{v}/d{L}/{q}", values, k0)
                rows += new
                if bad:
                    excluded[f"{v}/d{L}/{q}"] = bad
                    if q == "test_acc":  # the same runs, one point of the accuracy-by-depth line
                        excluded[f"{v}/test_acc_vs_depth"] = excluded.get(f"{v}/test_acc_vs_depth", 0) + bad
            r0 = next((r for r in rows if r.metric == f"{v}/d{L}/test_acc"), None)  # None: every run diverged
            if r0 is not None:
                rows.append(type(r0)(L, f"{v}/test_acc_vs_depth", r0.mean, r0.ci_low, r0.ci_high, r0.count))
            checks["test_acc"][v][str(L)] = {**_mean_std(acc[:, 0]), "values": acc[:, 0].tolist(),
                                             "lr": lr_of[(v, L)]}
            checks["t_sim_last_block"][f"{v}/d{L}"] = {
                "init": _mean_std([r["t_sim_init"][-1] for r in runs])["mean"],
                "trained": _mean_std([r["t_sim_trained"][-1] for r in runs])["mean"]}  # NaN: every run diverged
            checks["diverged_runs"] += [_job_key((v, L, r["seed"], r["lr"], "final")) for r in runs if r["diverged"]]
    checks["diverged_search_runs"] = sorted(k for k, r in done.items() if k.startswith("search") and r["diverged"])
    checks["excluded_values"] = excluded
    checks["test_acc_table"] = accuracy_table(checks, cfg)
    if keep_trials:
        checks["runs"] = done
    config = {"figure": "train", **cfg.to_dict(), "trials": cfg.seeds, "tokens": cfg.tokens}
    return FigureResult("train", config, rows, checks, str(device), time.perf_counter() - t0)


def train_title(cfg: TrainConfig) -> str:
    return (f"Small ViT on sklearn digits ({cfg.tokens} tokens, d = {cfg.width}, H = {cfg.heads}): "
            f"{cfg.epochs} epochs, AdamW, lr from {{{', '.join(f'{v:g}' for v in cfg.lrs)}}} on validation")


def train_panels(result: FigureResult) -> list:
    from ..output.plotting import Panel

    cfg = result.config
    variants = [v.strip() for v in cfg["archs"].split(",") if v.strip()]
    L = max(cfg["depths"])
    labels = tuple(variants)
    return [
        Panel("test accuracy (95% interval over seeds)", tuple(f"{v}/test_acc_vs_depth" for v in variants),
              "test accuracy", labels=labels, xlabel="depth L (blocks)", bounds=(0, 1)),
        Panel(f"training loss, L = {L}", tuple(f"{v}/d{L}/train_loss" for v in variants),
              "cross-entropy", log=True, labels=labels, xlabel="epoch"),
        Panel(f"t_sim per block at init, L = {L}", tuple(f"{v}/d{L}/t_sim_init" for v in variants),
              "t_sim (test images)", labels=labels, xlabel="block k (0 = embedded input)", bounds=(0, 1)),
        Panel(f"t_sim per block after training, L = {L}", tuple(f"{v}/d{L}/t_sim_trained" for v in variants),
              "t_sim (test images)", labels=labels, xlabel="block k (0 = embedded input)", bounds=(0, 1)),
    ]


# context broadcasting and the block it modifies: (with CB, without)
CB_PAIRS = (("pre-cb", "pre"), ("cb", "post"))


def train_findings(result: FigureResult) -> dict:
    """The numbers README quotes from this study (see :mod:`simulations.readme`): test accuracy per variant
    and depth (mean, std over seeds, the learning rate chosen), the last block's t_sim at the largest depth and,
    for each CB variant whose baseline ran too (``CB_PAIRS``), the per-seed accuracy differences to it."""
    c, cfg = result.checks, result.config
    depths = [int(L) for L in cfg["depths"]]
    variants = list(c["test_acc"])
    L = max(depths)
    paired = {}
    for cb, base in CB_PAIRS:
        if cb in variants and base in variants:
            # per seed, where both runs finished: a seed where either diverged has no difference to take
            diffs = {str(d): [a - b for a, b in zip(c["test_acc"][cb][str(d)]["values"],
                                                    c["test_acc"][base][str(d)]["values"])] for d in depths}
            paired[cb] = {"baseline": base, "diff": {d: _paired_diff(v) for d, v in diffs.items()}}
    return {"seed": cfg.get("seed"), "trials": result.trials, "depths": depths, "variants": variants,
            "epochs": cfg.get("epochs"),
            "test_acc": {v: {str(d): {k: c["test_acc"][v][str(d)][k] for k in ("mean", "std", "lr", "runs", "diverged")
                                      if k in c["test_acc"][v][str(d)]} for d in depths} for v in variants},
            "t_sim_last_block": {v: c["t_sim_last_block"][f"{v}/d{L}"] for v in variants},
            "cb_paired": paired,
            "diverged_runs": len(c.get("diverged_runs", [])), "partial_means": []}


def _paired_diff(diffs: list[float]) -> dict:
    """Mean, std and values of the finite per-seed differences; ``seeds_dropped``: seeds where a run diverged."""
    q = _mean_std(diffs)
    return {"mean": q["mean"], "std": q["std"], "values": [x for x in diffs if math.isfinite(x)],
            "seeds_dropped": q["diverged"]}


def _verdict(values: list[float], trials: int) -> str:
    """``higher``/``lower`` when every seed's difference has that sign, else ``mixed`` (a tie counts as mixed);
    ``none`` without a difference; ``one`` where a single seed of several finished both runs (one difference is
    no "every seed": a review found it reported so)."""
    if not values:
        return "none"  # no seed finished both runs
    if len(values) == 1 and trials > 1:
        return "one"
    if all(v > 0 for v in values):
        return "higher"
    if all(v < 0 for v in values):
        return "lower"
    return "mixed"


def _paired_text(cb: str, p: dict, depths: list[int], trials: int) -> str:
    """One sentence per CB variant: the paired differences per depth and what they say."""
    names = {"pre-cb": "pre-norm + CB", "cb": "post-norm + CB", "pre": "pre-norm", "post": "post-norm"}
    base = p["baseline"]
    sign = {"higher": "higher in every seed", "lower": "lower in every seed", "mixed": "the seeds disagree",
            "one": "one seed only: no verdict"}
    cells = []
    for d in depths:
        q = p["diff"][str(d)]
        dropped = q.get("seeds_dropped", 0)
        if not q["values"]:
            cells.append(f"none at L = {d} (a run diverged in every seed)")
            continue
        spread = "" if math.isnan(q["std"]) else f" +- {100 * q['std']:.1f}"
        cells.append(f"{100 * q['mean']:+.1f}{spread} at L = {d} ({sign[_verdict(q['values'], trials)]}"
                     + (f"; {dropped} seed{'s' * (dropped > 1)} left out, a run diverged)" if dropped else ")"))
    verdicts = {d: _verdict(p["diff"][str(d)]["values"], trials) for d in depths}
    at = lambda ds: ", ".join(str(d) for d in ds)  # noqa: E731
    higher = [d for d in depths if verdicts[d] == "higher"]
    lower = [d for d in depths if verdicts[d] == "lower"]
    if len(higher) == len(depths):
        says = f"{names[cb]} beats {names[base]} at every depth, in every seed"
    elif higher:
        says = (f"{names[cb]} beats {names[base]} in every seed only at L = {at(higher)}"
                + (f", loses in every seed at L = {at(lower)}" if lower else "")
                + ("" if len(higher) + len(lower) == len(depths) else
                   ", and elsewhere the seeds disagree" if "mixed" in verdicts.values() else
                   ", and elsewhere too few seeds finished both runs"))
    elif len(lower) == len(depths):
        says = f"{names[cb]} is below {names[base]} at every depth, in every seed"
    elif lower:
        says = (f"{names[cb]} never beats {names[base]} in every seed; it is below it in every seed at "
                f"L = {at(lower)}")
    else:
        says = f"{names[cb]} does not beat {names[base]} in every seed at any depth, nor lose to it"
    of = f"mean +- std of the {trials} per-seed differences" if trials > 1 else "the one seed's difference"
    return (f"{cb} - {base} (test accuracy, points, {of}; same initial weights and batches per seed): "
            f"{'; '.join(cells)}. So {says}.")


def render_train_findings(f: dict) -> str:
    depths, acc = f["depths"], f["test_acc"]
    # bold: the best mean at each depth (ties: all) among the variants none of whose runs diverged there; a
    # mean over the runs that survived would flatter a variant that often fails
    whole = lambda a: not a.get("diverged", 0) and math.isfinite(a["mean"])  # noqa: E731
    best = {d: max((acc[v][str(d)]["mean"] for v in f["variants"] if whole(acc[v][str(d)])), default=math.nan)
            for d in depths}
    label = {"pre-cb": "pre-cb (pre-norm + CB)", "cb": "cb (post-norm + CB)"}
    label |= {v: f"{v} (tau = {v[5:]})" for v in f["variants"] if v.startswith("deesc")}
    spread = "mean +- std" if f["trials"] > 1 else "one run each"
    lines = [f"Test accuracy (%), {spread} over {f['trials']} seed{'s' * (f['trials'] > 1)} (learning rate "
             f"chosen on validation):", "",
             "| variant | " + " | ".join(f"L = {d}" for d in depths) + " |", "|---" * (len(depths) + 1) + "|"]
    for v in f["variants"]:
        cells = []
        for d in depths:
            a = acc[v][str(d)]
            cell = _acc_text(a)
            cell = f"**{cell}**" if whole(a) and a["mean"] == best[d] else cell
            cells.append(f"{cell} ({a['lr']:.0e})".replace("e-0", "e-"))
        lines.append(f"| {label.get(v, v)} | " + " | ".join(cells) + " |")
    if f.get("diverged_runs"):
        lines += ["", f"{f['diverged_runs']} final run{'s' * (f['diverged_runs'] > 1)} diverged (a non-finite "
                      f"loss or weights); a diverged run is not scored, and its variant is not in bold at that "
                      f"depth. Means and stds are over the runs that finished."]
    L = max(depths)
    sims = ", ".join(f"{v} {s['init']:.3f} -> " + ("diverged" if math.isnan(s["trained"]) else f"{s['trained']:.3f}")
                     for v, s in f["t_sim_last_block"].items())
    lines += ["", f"Token similarity of the last block at L = {L}, at initialisation -> after training: {sims}."]
    for cb, p in f.get("cb_paired", {}).items():
        lines += ["", _paired_text(cb, p, depths, f["trials"])]
    return "\n".join(lines)
