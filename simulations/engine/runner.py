"""The batched Monte Carlo engine: trials as a leading batch dimension, run in chunks of random-number blocks.

Randomness: one ``torch.Generator`` seeded once with the run's seed draws a seed for every *block* of
``rng_block`` consecutive trials; each block then draws its own numbers, in the same order whatever chunk it
lands in. Each block is also computed as one batch (a :class:`Block`), so memory is bounded by the block size
times the number of workers. A *chunk* (``chunk`` trials, a multiple of ``rng_block``) is the unit of
dispatch to the workers, of the progress bar and of checkpoints; statistics are merged block by block in block
order (:mod:`simulations.engine.stats`). So results depend on neither the chunk size nor the number of workers.
"""

from __future__ import annotations

import contextvars
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from .stats import StreamingStats

if TYPE_CHECKING:
    from .checkpoint import Checkpoint

__all__ = ["resolve_device", "resolve_dtype", "BlockRandom", "Block", "Chunk", "iter_chunks", "run_chunks", "progress_into"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error, not a silent CPU run."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda was requested but no CUDA GPU is available; use --device cpu or auto")
        return torch.device("cuda")
    raise ValueError(f"device must be one of auto, cpu, cuda; got {name!r}")


def resolve_dtype(name: str) -> torch.dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {name!r}") from None


def block_seeds(seed: int, blocks: int) -> list[int]:
    """One seed per block, from a CPU generator seeded once with ``seed`` (the same on every device)."""
    master = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2 ** 62, (blocks,), generator=master, dtype=torch.int64).tolist()


@dataclass
class BlockRandom:
    """The generator of one random-number block, with the device and dtype its draws are made in."""

    generator: torch.Generator
    size: int
    device: torch.device
    dtype: torch.dtype

    def draw(self, sampler: Callable[..., torch.Tensor], *args: Any, per_trial: tuple[torch.Tensor, ...] = (),
             **kwargs: Any) -> torch.Tensor:
        """``sampler((size,), *args, generator=, dtype=, device=, **kwargs)``: one draw for the block's trials.

        With ``per_trial`` tensors (leading dim = the block's trials), they are passed instead of the batch
        shape, for samplers that depend on the state: ``sampler(*per_trial, *args, generator=, **kwargs)``.
        """
        if per_trial:
            return sampler(*per_trial, *args, generator=self.generator, **kwargs)
        kw = {"dtype": self.dtype, **kwargs}  # a sampler may be asked for another dtype explicitly
        return sampler((self.size,), *args, generator=self.generator, device=self.device, **kw)


@dataclass(frozen=True)
class Block:
    """One random-number block: the unit every computation runs on, as one batch (see :func:`run_chunks`)."""

    index: int  # of the chunk it belongs to
    start: int  # first trial
    random: BlockRandom

    @property
    def trials(self) -> int:
        return self.random.size


@dataclass(frozen=True)
class Chunk:
    """Consecutive whole blocks: the unit of dispatch to the workers, of the progress bar and of checkpoints."""

    index: int
    start: int  # first trial
    blocks: list[Block]

    @property
    def trials(self) -> int:
        return sum(b.trials for b in self.blocks)


def iter_chunks(trials: int, seed: int, *, chunk: int, rng_block: int, device: torch.device,
                dtype: torch.dtype) -> Iterator[Chunk]:
    """Chunks of whole blocks covering ``trials`` trials; each block's generator lives on ``device``."""
    if rng_block < 1 or chunk < rng_block or chunk % rng_block:
        raise ValueError(f"chunk must be a positive multiple of rng_block = {rng_block}; got chunk = {chunk}")
    blocks = -(-trials // rng_block)
    seeds = block_seeds(seed, blocks)
    per_chunk = chunk // rng_block
    for c, b0 in enumerate(range(0, blocks, per_chunk)):
        members = []
        for b in range(b0, min(b0 + per_chunk, blocks)):
            g = torch.Generator(device=device).manual_seed(seeds[b])
            size = min(rng_block, trials - b * rng_block)
            members.append(Block(c, b * rng_block, BlockRandom(g, size, device, dtype)))
        yield Chunk(c, b0 * rng_block, members)


@contextmanager
def _one_thread_per_worker(workers: int, device: torch.device) -> Iterator[None]:
    """With several Python workers on the CPU, each torch op runs on one thread (no oversubscription).

    Measured on the 2-core machine: with two torch threads per op, a 64 x 256 by 256 x 1024 product ran 20x
    slower and batched eigvals/svdvals 10-40x slower and erratically than with one (MKL threads nest inside
    torch's loop over the batch); one worker per core, one thread each, is the fast arrangement.
    """
    if workers <= 1 or device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def default_workers(device: torch.device) -> int:
    """CPU: one worker per core torch may use (2 here); CUDA: one (the GPU parallelises inside each op), run in
    a thread, so that the main thread merges one chunk while the GPU computes the next."""
    return max(1, torch.get_num_threads()) if device.type == "cpu" else 1


_OUTER_BAR: contextvars.ContextVar = contextvars.ContextVar("outer_progress_bar", default=None)


@contextmanager
def progress_into(bar) -> Iterator[None]:
    """Inside this context :func:`run_chunks` counts its trials on ``bar`` (a tqdm bar spanning several runs, as a
    sweep's) instead of showing a bar of its own."""
    token = _OUTER_BAR.set(bar)
    try:
        yield
    finally:
        _OUTER_BAR.reset(token)


def run_chunks(simulate: Callable[[Block], tuple[dict[str, torch.Tensor], dict[str, int]]], *, trials: int,
               seed: int, steps: int, chunk: int, rng_block: int, device: torch.device, dtype: torch.dtype,
               keep_trials: bool = False, progress: bool | None = None, desc: str = "trials",
               workers: int | None = None, checkpoint: Checkpoint | None = None) -> StreamingStats:
    """Run ``simulate(block) -> (values, first_step)`` over every block of every chunk; merge in block order.

    ``values[metric]``: ``(block trials, steps - first_step[metric])``. ``simulate`` is called once per block,
    each block one batch of its own: batched kernels round differently for different batch sizes (a batched
    ``(m, n, n) @ (n, k)`` becomes one ``(m n, n) @ (n, k)`` GEMM, and MKL blocks that by its size), so a
    block's numbers must never be computed in a batch shared with its neighbours. The blocks run in parallel
    threads (torch releases the GIL inside its ops), the next chunk's already queued while one is merged, and are
    merged in block order, so neither the chunk size nor the number of workers changes any result. A progress bar
    counts trials (shown on a terminal; ``progress`` forces it on or off).

    With a ``checkpoint``, the statistics are saved after every chunk, and a run of the same command that
    finds one continues after its last finished chunk (:mod:`simulations.engine.checkpoint`).
    """
    workers = default_workers(device) if workers is None else workers
    start = time.perf_counter()
    stats, done = StreamingStats(steps, keep_trials=keep_trials), 0
    # a checkpoint that kept per-trial values (or not) resumes only a run that keeps them alike: the statistics
    # carry the flag, and a resumed run would otherwise silently lack the values it asked for
    if (checkpoint is not None and (resumed := checkpoint.load()) is not None
            and resumed[0].keep_trials == keep_trials):
        stats, done = resumed
        print(f"{desc}: resuming after {done} finished chunk{'s' if done != 1 else ''} ({min(done * chunk, trials)} "
              f"of {trials} trials) from {checkpoint.path}", file=sys.stderr)
    show = sys.stderr.isatty() if progress is None else progress
    chunks = iter_chunks(trials, seed, chunk=chunk, rng_block=rng_block, device=device, dtype=dtype)
    outer = _OUTER_BAR.get()

    def finish(ch: Chunk, results) -> None:
        for values, first_step in results:  # merged in block order, whichever worker ran the block
            stats.update(values, first_step)
        if checkpoint is not None:
            checkpoint.save(stats, ch.index + 1, stats.earlier_seconds + time.perf_counter() - start)
        bar.update(ch.trials)

    with (nullcontext(outer) if outer is not None else
          tqdm(total=trials, desc=desc, unit="trial", disable=not show, leave=False)) as bar, \
            _one_thread_per_worker(workers, device), ThreadPoolExecutor(max_workers=workers) as pool:
        in_flight: deque[tuple[Chunk, list[Future]]] = deque()
        try:
            for ch in chunks:
                if ch.index < done:  # finished before an interruption: its blocks are in the restored statistics
                    bar.update(ch.trials)
                    continue
                if workers <= 1 and device.type == "cpu":
                    finish(ch, map(simulate, ch.blocks))
                    continue
                # the next chunk's blocks are queued before this one is merged, so no worker waits at a chunk's
                # end for the others (measured: 3-4% of a fig3 run on two workers); results stay in block order
                in_flight.append((ch, [pool.submit(simulate, b) for b in ch.blocks]))
                if len(in_flight) > 1:
                    ch0, futures = in_flight.popleft()
                    finish(ch0, (f.result() for f in futures))
            while in_flight:
                ch0, futures = in_flight.popleft()
                finish(ch0, (f.result() for f in futures))
        finally:  # on an error or an interrupt, blocks not yet started are dropped, not run
            for _, futures in in_flight:
                for f in futures:
                    f.cancel()
    return stats
