r"""Transformer blocks at PyTorch's default initialisation, for [YZ] Figs 1, 2, 4, 5 (and [CB]).

Each block is torch's own ``nn.MultiheadAttention(d, H, batch_first=True)`` (called with
``need_weights=True, average_attn_weights=False``, so the per-head attention matrices $P_h$ come from torch's
module), an FFN ``Linear(d, ffn d) -> ReLU -> Linear(ffn d, d)`` and ``nn.LayerNorm(d)``, all with torch's default
initialisation. With $SA$ the attention sub-layer, $\Pi = \mathbf{1}\mathbf{1}^T/n$ and $LN$ per token:

- ``post``: $X_1 = LN(X + SA(X))$, $X_2 = LN(X_1 + FFN(X_1))$;
- ``pre``: $X_1 = X + SA(LN(X))$, $X_2 = X_1 + FFN(LN(X_1))$ (no final LayerNorm: $X_2$ is the residual stream);
- ``deescalated`` (C11, [YZ]): post-norm with $(I - \tau\Pi)$ at ``deescalate_at``:
  ``residual`` (default, THEORY.md): $X_1 = LN((I - \tau\Pi)(X + SA(X)))$;
  ``attention``: $X_1 = LN(X + (I - \tau\Pi) SA(X))$; ``output``: $X_1 = (I - \tau\Pi) LN(X + SA(X))$;
- ``cb`` (C12, [CB]): post-norm with $CB(z) = (z + \Pi z)/2$ on the FFN output: $X_2 = LN(X_1 + CB(FFN(X_1)))$;
- ``pre-cb`` (C12, [CB] in its own setting, a pre-norm ViT): $X_1 = X + SA(LN(X))$,
  $X_2 = X_1 + CB(FFN(LN(X_1)))$. CB sits on the FFN branch only: after the FFN's second linear layer, before
  that branch is added to the residual stream; the attention branch and the stream itself are left alone.

Where CB goes: the [CB] summary in ``shared/seeds/`` says only that uniform attention is inserted "to each
layer"; shared/THEORY.md's [CB] entry places it on the MLP output of each block before its residual add, which
``cb`` and ``pre-cb`` follow (``pre-cb`` equals ``pre`` with the FFN branch $F$ replaced by $CB(F)$, same weights).

:meth:`Block.forward` returns the output and a :class:`BlockTrace` of the intermediates the figures read.
:func:`build_stack` makes a fresh model from an integer seed without touching the global random state.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from theory._operators import _context_broadcast, _deescalate

__all__ = ["ARCHS", "PRE_NORM", "DEESCALATE_AT", "BlockTrace", "Block", "Stack", "build_stack"]

ARCHS = ("post", "pre", "deescalated", "cb", "pre-cb")
PRE_NORM = ("pre", "pre-cb")  # no LayerNorm at the block output: X_2 is the residual stream
DEESCALATE_AT = ("residual", "attention", "output")


@dataclass
class BlockTrace:
    """Intermediates of one block on ``X`` ``(b, n, d)``; ``P`` is ``(b, H, n, n)``."""

    attn_in: Tensor  # input of SA: X (post-norm family) or LN(X) (pre-norm family: pre, pre-cb)
    attn_out: Tensor  # SA(attn_in) = sum_h P_h attn_in W_h (+ biases, zero at default init)
    P: Tensor  # per-head attention matrices from torch's module
    resid: Tensor  # the attention residual stream before LN (post family, after de-escalation if any); X_1 (pre)
    mid: Tensor  # X_1: the stream between the two sub-layers
    ffn_out: Tensor  # FFN(.) before CB
    ffn_branch: Tensor  # what is added to the residual: FFN(.), or CB(FFN(.)) for ``cb`` and ``pre-cb``
    out: Tensor  # X_2, the block output


class Block(nn.Module):
    r"""One Transformer block of architecture ``arch`` (see module doc). ``tau``: de-escalation strength."""

    def __init__(self, d: int, heads: int, ffn: int, arch: str = "post", *, tau: float = 1.0,
                 deescalate_at: str = "residual", dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(ARCHS)}; got {arch!r}")
        if deescalate_at not in DEESCALATE_AT:
            raise ValueError(f"deescalate_at must be one of {', '.join(DEESCALATE_AT)}; got {deescalate_at!r}")
        kw = {"dtype": dtype, "device": device}
        self.arch, self.tau, self.deescalate_at = arch, float(tau), deescalate_at
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True, **kw)
        self.ffn = nn.Sequential(nn.Linear(d, ffn * d, **kw), nn.ReLU(), nn.Linear(ffn * d, d, **kw))
        self.ln1 = nn.LayerNorm(d, **kw)
        self.ln2 = nn.LayerNorm(d, **kw)

    def _sa(self, Xhat: Tensor) -> tuple[Tensor, Tensor]:
        Y, P = self.attn(Xhat, Xhat, Xhat, need_weights=True, average_attn_weights=False)
        return Y, P  # (b, n, d), (b, H, n, n)

    def _deescalate(self, X: Tensor, where: str) -> Tensor:
        if self.arch != "deescalated" or self.deescalate_at != where:
            return X
        # theory's operator without its input checks: a diverging run's NaNs must reach the loss, which records the
        # divergence, as in every other variant (the public function raises on them)
        return _deescalate(X, X.new_tensor(self.tau))  # a Python float would widen float32 to float64

    def forward(self, X: Tensor) -> tuple[Tensor, BlockTrace]:
        if self.arch in PRE_NORM:
            Xhat = self.ln1(X)
            A, P = self._sa(Xhat)
            X1 = X + A
            F = self.ffn(self.ln2(X1))
            G = _context_broadcast(F) if self.arch == "pre-cb" else F
            X2 = X1 + G
            return X2, BlockTrace(Xhat, A, P, X1, X1, F, G, X2)
        A, P = self._sa(X)
        R = self._deescalate(X + self._deescalate(A, "attention"), "residual")
        X1 = self._deescalate(self.ln1(R), "output")
        F = self.ffn(X1)
        G = _context_broadcast(F) if self.arch == "cb" else F
        X2 = self.ln2(X1 + G)
        return X2, BlockTrace(X, A, P, R, X1, F, G, X2)


class Stack(nn.Module):
    """``depth`` blocks of one architecture; :meth:`forward` returns ``X_L`` and one trace per block."""

    def __init__(self, blocks: list[Block]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, X: Tensor) -> tuple[Tensor, list[BlockTrace]]:
        traces = []
        for block in self.blocks:
            X, trace = block(X)
            traces.append(trace)
        return X, traces


_GLOBAL_RNG = threading.Lock()


def build_stack(arch: str, *, width: int, heads: int, ffn: int, depth: int, seed: int,
                dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu", tau: float = 1.0,
                deescalate_at: str = "residual") -> Stack:
    """A fresh ``depth``-block stack at PyTorch's default initialisation, a pure function of ``seed``.

    Parameters are drawn on the CPU under a forked global generator (the caller's random state is untouched),
    in ``dtype``, then moved to ``device``: the same seed gives the same weights on every device. Architectures
    with the same shapes (all of them) get identical weights from one seed, so they can be compared paired.
    """
    # PyTorch's default initialisers draw from the global generator, which the engine's worker threads share:
    # seeding and drawing must not interleave between threads, or a trial's weights depend on its neighbour.
    with _GLOBAL_RNG, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        blocks = [Block(width, heads, ffn, arch, tau=tau, deescalate_at=deescalate_at, dtype=dtype)
                  for _ in range(depth)]
    return Stack(blocks).to(device).eval()  # eval: no dropout anywhere (MHA's dropout is 0 anyway)
