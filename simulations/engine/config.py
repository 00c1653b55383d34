"""Frozen run configurations, one per figure; every field is a CLI flag (``--tokens`` for ``tokens``, ...).

A simulation is a pure function of its config. Defaults follow shared/THEORY.md ("Monte Carlo studies").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar

__all__ = ["RunConfig", "Fig3Config", "TransformerConfig", "Fig1Config", "Fig2Config", "Fig4Config", "Fig5Config",
           "CONFIGS"]


def _positive_int(name: str, value: object, least: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}; got {value!r}")


@dataclass(frozen=True)
class RunConfig:
    """Fields every figure shares."""

    tokens: int = 32
    width: int = 64
    depth: int = 24
    trials: int = 1000
    seed: int = 0
    device: str = "auto"
    dtype: str = "float64"
    chunk: int = 1000  # trials spread over the workers and checkpointed at once; a multiple of rng_block
    rng_block: int = 250  # trials per random-number block, computed as one batch (results depend on it)
    # the CLI's chunk and rng_block where a run goes to CUDA and the flags are not given: a GPU needs large batches
    # to fill (a GPU run's random numbers differ from a CPU run's anyway); empty: the defaults above everywhere
    cuda_batches: ClassVar[dict[str, int]] = {}

    def __post_init__(self) -> None:
        _positive_int("tokens", self.tokens, 2)
        _positive_int("width", self.width)
        _positive_int("depth", self.depth)
        _positive_int("trials", self.trials)
        _positive_int("seed", self.seed, 0)
        if self.seed >= 2 ** 64:  # torch.Generator.manual_seed takes 64 bits; found at run time, after work
            raise ValueError(f"seed must be an integer below 2**64 = {2 ** 64}; got {self.seed}")
        _positive_int("rng_block", self.rng_block)
        _positive_int("chunk", self.chunk)
        if self.chunk % self.rng_block:
            raise ValueError(f"chunk must be a multiple of rng_block = {self.rng_block}; got chunk = {self.chunk}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be one of auto, cpu, cuda; got {self.device!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64; got {self.dtype!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    # flags whose use depends on another flag (fig3's ensemble parameters, fig2's de-escalation): see uses()
    CONDITIONAL: ClassVar[tuple[str, ...]] = ()

    def uses(self, name: str) -> bool:
        """Whether this run's result depends on field ``name`` (every field here; see :attr:`CONDITIONAL`)."""
        return True

    def why_unused(self, name: str) -> str:
        """Why field ``name`` changes nothing in this run (where :meth:`uses` says it does not)."""
        return "it is not used"

    def unused_params(self) -> list[str]:
        """The conditional fields set away from their defaults that this run does not use
        (``--attention dirichlet --beta 2``: beta changes nothing)."""
        return [k for k in self.CONDITIONAL
                if not self.uses(k) and getattr(self, k) != type(self).__dataclass_fields__[k].default]


ATTENTIONS = ("softmax", "symmetric", "data", "causal", "dirichlet", "sinkhorn", "banded")
SINKHORN_MAX_BETA = 8.0


@dataclass(frozen=True)
class Fig3Config(RunConfig):
    """[YZ] Fig 3: the random attention chain X_{k+1} = P_k X_k W_k, rescaled to ||X|| = sqrt(n d)."""

    cuda_batches: ClassVar[dict[str, int]] = {"rng_block": 20000, "chunk": 100000}
    beta: float = 4.0  # softmax, causal, sinkhorn (<= 8) and banded scores: softmax(beta Z)
    attention: str = "softmax"  # one of ATTENTIONS
    alpha: float = 1.0  # dirichlet: rows Dirichlet(alpha)
    window: int = 2  # banded: token i attends to |i - j| <= window
    # W_k iid N(0, 1/d) ("gaussian") or Haar orthogonal U_k ("orthogonal"); "auto": orthogonal for the symmetric
    # variant, where C6 is then a per-step theorem, gaussian otherwise (with Gaussian W, C6 holds only for the
    # ratio of expectations, and single steps can violate it at small d).
    weights: str = "auto"

    @property
    def weight_family(self) -> str:
        if self.weights != "auto":
            return self.weights
        return "orthogonal" if self.attention == "symmetric" else "gaussian"

    # the ensemble parameters each attention ensemble draws with (fig3's draw_step); the others it ignores
    ENSEMBLE_PARAMS: ClassVar[dict[str, tuple[str, ...]]] = {
        "softmax": ("beta",), "causal": ("beta",), "sinkhorn": ("beta",), "banded": ("beta", "window"),
        "dirichlet": ("alpha",), "symmetric": (), "data": ()}

    CONDITIONAL: ClassVar[tuple[str, ...]] = ("beta", "alpha", "window")

    def uses(self, name: str) -> bool:
        return name not in self.CONDITIONAL or name in self.ENSEMBLE_PARAMS[self.attention]

    def why_unused(self, name: str) -> str:
        own = ", ".join("--" + p for p in self.ENSEMBLE_PARAMS[self.attention])
        return (f"it is not used by {self.attention} attention "
                f"({f'it draws with {own}' if own else 'it has no ensemble parameter'})")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weights not in ("auto", "gaussian", "orthogonal"):
            raise ValueError(f"weights must be one of auto, gaussian, orthogonal; got {self.weights!r}")
        if not (isinstance(self.beta, (int, float)) and math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"beta must be a finite number >= 0; got {self.beta!r}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}; got {self.attention!r}")
        if not (isinstance(self.alpha, (int, float)) and math.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(f"alpha must be a finite number > 0; got {self.alpha!r}")
        _positive_int("window", self.window, 1)
        if self.attention == "sinkhorn" and self.beta > SINKHORN_MAX_BETA:
            raise ValueError(f"beta must be <= {SINKHORN_MAX_BETA:g} for sinkhorn attention (beyond, some matrices sit "
                             f"too close to the boundary of the Birkhoff polytope to scale in float64); got {self.beta!r}")


def _check_deescalate_at(value: object) -> None:
    if value not in ("residual", "attention", "output"):
        raise ValueError(f"deescalate_at must be one of residual, attention, output; got {value!r}")


@dataclass(frozen=True)
class TransformerConfig(RunConfig):
    """Deep Transformer stacks at PyTorch's default initialisation; one fresh model and input per trial."""

    tokens: int = 64
    width: int = 256
    trials: int = 50
    heads: int = 8
    ffn: int = 4  # FFN width multiple
    chunk: int = 10
    rng_block: int = 1  # one generator per trial: it seeds that trial's model and input

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.width < 2:  # found after the run's work otherwise ("X must be non-zero", a log axis of zeros)
            raise ValueError(f"width must be >= 2 for the Transformer figures (LayerNorm over one feature maps every "
                             f"token to 0); got {self.width}")
        _positive_int("heads", self.heads)
        _positive_int("ffn", self.ffn)
        if self.width % self.heads:
            raise ValueError(f"width must be divisible by heads; got width = {self.width}, heads = {self.heads}")


@dataclass(frozen=True)
class Fig2Config(TransformerConfig):
    """[YZ] Fig 2: per block t_sim, xi1/xi2 of the attention sub-layer, head-mean delta and omega."""

    arch: str = "post"  # post | pre | deescalated | cb | pre-cb (simulations.engine.blocks)
    tau: float = 1.0
    deescalate_at: str = "residual"  # residual (X + SA(X), before LN) | attention (SA(X)) | output (after LN)

    CONDITIONAL: ClassVar[tuple[str, ...]] = ("tau", "deescalate_at")

    def uses(self, name: str) -> bool:
        return name not in self.CONDITIONAL or self.arch == "deescalated"

    def why_unused(self, name: str) -> str:
        return f"only --arch deescalated uses it (this run's is {self.arch})"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.arch not in ("post", "pre", "deescalated", "cb", "pre-cb"):
            raise ValueError(f"arch must be one of post, pre, deescalated, cb, pre-cb; got {self.arch!r}")
        if not (isinstance(self.tau, (int, float)) and math.isfinite(self.tau)):
            raise ValueError(f"tau must be a finite number; got {self.tau!r}")
        _check_deescalate_at(self.deescalate_at)


@dataclass(frozen=True)
class Fig1Config(TransformerConfig):
    """[YZ] Fig 1: post-norm vs pre-norm at default init: t_sim, mean cosine similarity, gradient norm."""

    trials: int = 20


@dataclass(frozen=True)
class Fig4Config(TransformerConfig):
    """[YZ] Fig 4: pre-norm: t_sim and the norms ||X||, ||LN(X)||, ||P(Xhat) Xhat W|| per block."""

    trials: int = 20


@dataclass(frozen=True)
class Fig5Config(TransformerConfig):
    """[YZ] Fig 5: de-escalated post-norm stacks, token diversity per block for several tau."""

    trials: int = 20
    taus: tuple[float, ...] = (0.1, 0.5, 1.0)
    deescalate_at: str = "residual"  # residual (X + SA(X), before LN) | attention (SA(X)) | output (after LN)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.taus or not all(isinstance(t, (int, float)) and math.isfinite(t) for t in self.taus):
            raise ValueError(f"taus must be finite numbers; got {self.taus!r}")
        labels = [f"{t:g}" for t in self.taus]  # each tau's metrics are named tau=<label> (fig5)
        if len(set(labels)) < len(labels):
            raise ValueError(f"taus must differ in their first 6 significant digits (each names its curve); got "
                             f"{self.taus!r}")
        _check_deescalate_at(self.deescalate_at)


CONFIGS = {"fig1": Fig1Config, "fig2": Fig2Config, "fig3": Fig3Config, "fig4": Fig4Config, "fig5": Fig5Config}
