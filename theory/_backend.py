"""numpy in -> numpy out, torch in -> torch out.

Every public function of :mod:`theory` is written once, in torch, and wrapped by :func:`array_function`:
array-like arguments become tensors on the way in and come back as the caller's kind on the way out.
With any ``torch.Tensor`` among the arguments the result is torch on that tensor's device, in the dtype
torch's promotion gives (a Python or 0-d scalar never widens a float32 batch); otherwise the inputs are
numpy arrays (integers read as float64) and so is the result, a numpy scalar where it is 0-d.
"""

from __future__ import annotations

import functools
from numbers import Number
from typing import Any, Callable

import numpy as np
import torch

__all__ = ["array_function", "matmul"]


def _is_arraylike(x: Any) -> bool:
    return isinstance(x, (torch.Tensor, np.ndarray, np.generic, Number, list, tuple)) and not isinstance(x, bool)


def _to_numpy_float(name: str, x: Any) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind in "biu":
        a = a.astype(np.float64)
    if a.dtype.kind == "c":
        raise ValueError(f"{name} must be real; got complex dtype {a.dtype}")
    if a.dtype.kind != "f":
        raise ValueError(f"{name} must be a real floating array; got dtype {a.dtype}")
    return a


def _scalar_dtype(tensors: list[torch.Tensor]) -> torch.dtype:
    """The dtype a Python number takes beside these tensors: their floating dtype (float64 if none is floating),
    as torch's own promotion treats a Python scalar (a float64 0-d tensor would widen a 0-d float32 one)."""
    floating = [t.dtype for t in tensors if t.is_floating_point()]
    return functools.reduce(torch.promote_types, floating) if floating else torch.float64


def _tensor_in(name: str, x: Any, device: torch.device | None, scalar: torch.dtype | None = None) -> torch.Tensor:
    if scalar is not None and isinstance(x, (int, float)) and not isinstance(x, (bool, np.generic)):
        return torch.tensor(x, dtype=scalar, device=device)
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise ValueError(f"{name} must be real; got complex dtype {x.dtype}")
        if not x.is_floating_point():
            x = x.to(torch.float64)
        if device is not None and x.device != device:
            raise ValueError(f"all tensors must be on one device; {name} is on {x.device}, another on {device}")
        return x
    a = _to_numpy_float(name, x)
    t = torch.from_numpy(a if a.flags.c_contiguous else a.copy())  # 0-d stays 0-d
    return t if device is None else t.to(device)


def _out(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        a = x.detach().cpu().numpy()
        return a[()] if a.ndim == 0 else a
    if isinstance(x, tuple):
        return tuple(_out(v) for v in x)
    if isinstance(x, dict):
        return {k: _out(v) for k, v in x.items()}
    return x


def array_function(fn: Callable | None = None, *, keep: tuple[str, ...] = ()) -> Callable:
    """Wrap a torch implementation so that it accepts numpy, torch or Python numbers (see module doc).

    Arguments named in ``keep``, and those that are ``None``, strings, booleans or ``torch.Generator``s,
    pass through untouched. Use as ``@array_function`` or ``@array_function(keep=("eps",))``.
    """
    if fn is None:
        return functools.partial(array_function, keep=keep)
    names = list(fn.__code__.co_varnames[: fn.__code__.co_argcount + fn.__code__.co_kwonlyargcount])

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        items = [(names[i] if i < len(names) else f"arg{i}", a) for i, a in enumerate(args)]
        items += list(kwargs.items())
        tensors = [a for _, a in items if isinstance(a, torch.Tensor)]
        like_torch = bool(tensors)
        device = tensors[0].device if like_torch else None
        scalar = _scalar_dtype(tensors) if like_torch else None
        conv = {name: (_tensor_in(name, a, device, scalar) if name not in keep and _is_arraylike(a) else a)
                for name, a in items}
        pos = [conv[name] for name, _ in items[: len(args)]]
        kw = {k: conv[k] for k in kwargs}
        result = fn(*pos, **kw)
        return result if like_torch else _out(result)

    return wrapper


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` (batched, broadcasting). On the CPU in float32 or float64, without autograd, through numpy's
    matmul (OpenBLAS's gemm per matrix, the GIL released): 2-3x faster than torch's CPU batched matmul for the
    small products of the chain here (31-64 rows; measured in ``benchmarks/bench_matmul.py``). The same
    product in the same shapes rounds the same way each time, so runs stay reproducible."""
    if (a.device.type == "cpu" and b.device.type == "cpu" and a.dtype == b.dtype
            and a.dtype in (torch.float32, torch.float64) and not (a.requires_grad or b.requires_grad)
            and a.ndim >= 2 and b.ndim >= 2):
        return torch.from_numpy(np.matmul(a.numpy(), b.numpy()))
    return a @ b
