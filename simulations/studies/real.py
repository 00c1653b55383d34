r"""Real attention: token similarity escalation in a trained Transformer (default all-MiniLM-L6-v2, a post-norm
encoder; ``--model DIR`` any local Hugging Face encoder or decoder, see :mod:`simulations.studies.real_model`).

The theorems (C5-C7, C10) assume symmetric attention; this study measures what trained attention looks like.
Each input sequence (a line of the bundled ``simulations/studies/data/corpus.txt`` or of ``--text``) is one trial;
per sequence and layer the quantities are computed on the kept tokens (``scope``, see
:mod:`simulations.studies.real_model`: special tokens such as [CLS]/[SEP] and padding dropped, each attention
block renormalised) and reduced over the H heads, then averaged over sequences (mean and Student-t 95% interval,
every sequence weighted equally).

Rows (step 0 = embedding output $X_0$, step $k$ = layer $k$; $X_k$ = the model's ``hidden_states[k]`` as returned):

- ``t_sim``, ``t_div`` of the hidden state $X_k$ (D1); ``r_layer`` $= t_{sim}(X_k)/t_{sim}(X_{k-1})$, the whole layer;
- head means of ``delta``, ``sigma``, ``mu``, ``omega`` of the restricted $P_h$ (D5); for causal (lower-triangular)
  attention ``delta`` $= \max_{i \ge 2} P_{ii}$ exactly (:func:`theory.slem`);
- only where the family's attention sub-layer is recomputed and reproduces the model's own output
  (:func:`~simulations.studies.real_model.inspect_structure`): the sub-layer $A_k \to SA(A_k)$ with the restricted
  $P_h$ (:func:`theory.step_metrics`), $A_k$ the attention's input ($X_{k-1}$ post-norm, $LN_1(X_{k-1})$ GPT-2
  pre-norm): ``xi_ratio_minus_1``, ``r``, C10's ``r_estimate`` and ``r_bound``;
- per head, the pure mixing step $Y_h = P_h A_k$ ($U = I$; $A_k = X_{k-1}$ where the sub-layer is not
  recomputed), as shares of the H heads:
  ``share_C5_holds`` (both C5 bounds: a theorem for every row-stochastic $P$, so 1 up to rounding) and
  ``share_C6_holds`` ($r \ge 1/(s + \delta^2(1-s))$, a theorem only for symmetric $P$, C8). By C2,
  $r = 1/(s + (\xi_2/\xi_1)^2(1-s))$, so C6 holds exactly where C5's symmetric corollary $\xi_1/\xi_2 \ge 1/\delta$
  does: one share serves both;
- distance from C6's hypotheses, head means: ``asymmetry`` $= \|(P - P^T)/2\|_F/\|P\|_F \in [0, 1]$ (0 iff
  symmetric), ``max_column_sum_error`` $= \max_j |(P^T\mathbf{1})_j - 1|$ (0 iff doubly stochastic; ``omega`` is its
  RMS form, C4) and ``special_mass``, the attention mass the restriction removed (rows' weight on [CLS]/[SEP]).
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from typing import ClassVar
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

import theory as T

from ..engine.runner import resolve_device, resolve_dtype
from ..output.quoting import Quoter, series_text, sig, span
from .real_model import (MODEL_NAME, check_model_dir, encode, inspect_structure, load_model,  # transformers: when run
                         model_title, restrict)
from ..engine.result import FigureResult
from ..engine.stats import StreamingStats

__all__ = ["RealConfig", "simulate_real", "real_panels", "real_title", "real_findings", "render_real_findings",
           "real_summary", "read_texts", "sequence_metrics", "REAL_METRICS", "DEFAULT_CORPUS"]

DEFAULT_CORPUS = Path(__file__).resolve().parent / "data" / "corpus.txt"
STREAM = ("t_sim", "t_div")  # step 0 onwards
LAYER = ("r_layer", "xi_ratio_minus_1", "r", "r_estimate", "r_bound", "delta", "sigma", "mu", "omega",
         "share_C5_holds", "share_C6_holds", "asymmetry", "max_column_sum_error",
         "special_mass")
REAL_METRICS = (*STREAM, *LAYER)
SUBLAYER_METRICS = ("xi_ratio_minus_1", "r", "r_estimate", "r_bound")  # need the recomputed attention sub-layer
PER_HEAD = ("delta", "sigma", "omega", "asymmetry", "special_mass", "C6_holds")  # (L, H) tables in the JSON
_REL_TOL = 1e-9  # C5/C6 comparisons: float64 rounding, not slack


@dataclass(frozen=True)
class RealConfig:
    """Trained attention: all-MiniLM-L6-v2 or any local Hugging Face model on the project corpus ([real] extra)."""

    # the CLI's help for flags whose meaning here differs from the figures' (simulations.cli)
    HELP: ClassVar[dict[str, str]] = {
        "seed": "recorded only: nothing is drawn (the model runs in eval mode)",
        "batch": "sequences per padded forward pass (results do not depend on it)"}

    model: str = MODEL_NAME  # the bundled all-MiniLM-L6-v2, or a local model directory (config, weights, tokenizer)
    text: str = ""  # a text file, one sequence per line ('#' lines skipped); "" = simulations/studies/data/corpus.txt
    max_tokens: int = 128  # truncation length, [CLS] and [SEP] included
    batch: int = 16  # sequences per padded forward pass (results do not depend on it)
    scope: str = "content"  # content: drop [CLS], [SEP], padding | all: drop padding only
    seed: int = 0  # nothing is random (eval mode); kept so the shared --seed flag means the same everywhere
    device: str = "auto"
    dtype: str = "float32"  # the model's own precision; the metrics are always taken in float64

    def __post_init__(self) -> None:
        for name, least, most in (("max_tokens", 4, 512), ("batch", 1, None), ("seed", 0, None)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < least or (most is not None and v > most):
                bound = f"between {least} and {most}" if most else f">= {least}"
                raise ValueError(f"{name} must be an integer {bound}; got {v!r}")
        if self.scope not in ("content", "all"):
            raise ValueError(f"scope must be one of content, all; got {self.scope!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be one of auto, cpu, cuda; got {self.device!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64; got {self.dtype!r}")
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be {MODEL_NAME} or a local model directory; got {self.model!r}")
        if self.model != MODEL_NAME:
            check_model_dir(self.model)
        if self.text and not Path(self.text).is_file():
            raise ValueError(f"--text must be a readable text file; {self.text!r} is not a file")

    @property
    def text_path(self) -> Path:
        return Path(self.text) if self.text else DEFAULT_CORPUS

    @property
    def trials(self) -> int:
        """Number of input sequences (the CLI reports it as the trial count)."""
        return len(read_texts(self.text_path))

    def to_dict(self) -> dict:
        return asdict(self)


def read_texts(path: Path) -> list[str]:
    """Non-blank lines not starting with '#', stripped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the text file {str(path)!r}: {exc}") from None
    texts = [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")]
    if not texts:
        raise ValueError(f"{str(path)!r} holds no text (one sequence per non-blank line, '#' lines skipped)")
    return texts


def _shares(X: Tensor) -> tuple[Tensor, Tensor]:
    return T.token_similarity(X), T.token_diversity(X)


def sequence_metrics(step, X: Tensor, P: Tensor, dropped: Tensor) -> dict[str, Tensor]:
    r"""All quantities of one sequence, float64.

    ``step``: ``(X_in (L, n, d), P) -> (A, SA(A))``, the attention sub-layer of every layer (the input $A$ its
    heads mix and its output; :meth:`~simulations.studies.real_model.Sublayer.step`), or ``None`` where it is not
    recomputed (then $A = X_{k-1}$ and the sub-layer rows are left out); ``X``: ``(L + 1, n, d)`` hidden states on
    the kept tokens; ``P``: ``(L, H, n, n)`` restricted, renormalised attention; ``dropped``: ``(L, H, n)`` the mass
    removed. Returns ``t_sim``/``t_div`` ``(L + 1,)``, every other row metric ``(L,)``, and per-head tables
    ``head/<name>`` ``(L, H)`` plus C3 checks.
    """
    Xin = X[:-1]  # (L, n, d): the input of each layer
    if step is not None:
        A, Y = step(Xin, P)  # (L, n, d) each
        out = T.step_metrics(A, Y, P)  # C10 form: head means of delta, sigma, mu, omega
    else:
        A = Xin
        out = {"delta": T.slem(P).mean(-1), "sigma": T.diversity_gain(P).mean(-1),
               "mu": T.rms_diversity_gain(P).mean(-1), "omega": T.column_sum_defect(P).mean(-1)}
    out["t_sim"], out["t_div"] = _shares(X)
    out["r_layer"] = out["t_sim"][1:] / out["t_sim"][:-1]
    # per head, the mixing step Y_h = P_h A (U = I)
    Xh = A.unsqueeze(1).expand(-1, P.shape[1], -1, -1)  # (L, H, n, d)
    PX = P @ Xh  # (L, H, n, d)
    xi1, xi2 = T.growth_factors(Xh, PX)
    sigma_bound, xi1_bound = T.xi_bounds(Xh, P)
    delta = T.slem(P)  # (L, H); causal P: max_{i >= 2} P_ii exactly
    # C5's |xi1 - 1| bound with room for xi1's own rounding (a few ulps of xi1), not an absolute 1e-9, which
    # passed every head once the bound itself fell below it
    rounding = 16 * torch.finfo(xi1.dtype).eps * xi1
    c5 = (xi2 <= sigma_bound * (1 + _REL_TOL)) & ((xi1 - 1).abs() <= xi1_bound * (1 + _REL_TOL) + rounding)
    # C6 in its odds form (THEORY.md, Precision): odds(Y)/odds(X) = (xi1/xi2)^2 >= delta^-2, a relative slack that
    # does not shrink with t_div; r >= bound (1 - 1e-9) passed every head once t_div fell below 1e-9
    c6 = (xi2 == 0) | (delta.square() * T.odds_growth(xi1, xi2) >= 1 - _REL_TOL)
    asym = torch.linalg.matrix_norm((P - P.mT) / 2) / torch.linalg.matrix_norm(P)  # (L, H)
    col_err = (P.sum(-2) - 1).abs().amax(-1)  # (L, H)
    head = {"delta": delta, "sigma": sigma_bound, "omega": T.column_sum_defect(P), "asymmetry": asym,
            "special_mass": dropped.mean(-1), "C6_holds": c6.double()}
    out.update({
        "share_C5_holds": c5.double().mean(-1), "share_C6_holds": c6.double().mean(-1), "asymmetry": asym.mean(-1),
        "max_column_sum_error": col_err.mean(-1), "special_mass": dropped.mean((-2, -1)),
        "C5_violations": (~c5).sum(), "C3_row_sum_error": (P.sum(-1) - 1).abs().amax(),
        "C3_lower_left": T.attention_blocks(P)[1].abs().amax(),  # V^T P V = [[1, b^T], [0, C]]
        **{f"head/{k}": v for k, v in head.items()},
    })
    return out


def simulate_real(cfg: RealConfig, *, keep_trials: bool = False, progress: bool | None = None,
                  checkpoint=None) -> FigureResult:  # noqa: ARG001 -- one pass, nothing to resume
    """Run the model over the corpus and return the per-layer summary; a pure function of ``cfg``."""
    t0 = time.perf_counter()
    texts = read_texts(cfg.text_path)
    device, dtype = resolve_device(cfg.device), resolve_dtype(cfg.dtype)
    loaded = load_model(cfg.model, device=device, dtype=dtype)
    structure = inspect_structure(loaded, texts[0], max_tokens=cfg.max_tokens)
    sub, blocks = structure.sublayer, structure.blocks
    step = None if sub is None else (lambda Xin, P: sub.step(blocks, Xin, P))
    metrics = REAL_METRICS if sub is not None else tuple(m for m in REAL_METRICS if m not in SUBLAYER_METRICS)
    L, H = structure.layers, structure.heads
    stats = StreamingStats(L + 1, keep_trials=keep_trials)
    first = {m: (0 if m in STREAM else 1) for m in metrics}
    per_head = {k: np.zeros((L, H)) for k in PER_HEAD}
    checks = {"C3_max_row_sum_error": 0.0, "C3_max_lower_left": 0.0, "C5_violations": 0, "skipped_short": 0,
              "truncated": 0, "attention_max_above_diagonal": 0.0,
              "attention_sublayer_rel_error": structure.sublayer_error}
    lengths, used, removed = [], 0, {}
    from tqdm.auto import tqdm

    show = progress if progress is not None else sys.stderr.isatty()
    for i in tqdm(range(0, len(texts), cfg.batch), desc="real", disable=not show):
        for seq in encode(loaded, texts[i:i + cfg.batch], max_tokens=cfg.max_tokens, scope=cfg.scope):
            n = int(seq.keep.sum())
            checks["truncated"] += int(seq.truncated)
            if n < 2:  # t_sim and delta need two tokens
                checks["skipped_short"] += 1
                continue
            X = seq.hidden[:, seq.keep].to(torch.float64)  # (L + 1, n, d)
            P, dropped = restrict(seq.attention.to(torch.float64), seq.keep)  # (L, H, n, n), (L, H, n)
            with torch.no_grad():
                m = sequence_metrics(step, X, P, dropped)
            stats.update({k: m[k][None] for k in metrics}, first_step=first)
            for k in PER_HEAD:
                per_head[k] += m[f"head/{k}"].numpy()
            checks["C3_max_row_sum_error"] = max(checks["C3_max_row_sum_error"], float(m["C3_row_sum_error"]))
            checks["C3_max_lower_left"] = max(checks["C3_max_lower_left"], float(m["C3_lower_left"]))
            checks["C5_violations"] += int(m["C5_violations"])
            checks["attention_max_above_diagonal"] = max(checks["attention_max_above_diagonal"], seq.upper)
            removed.update(dict.fromkeys(seq.removed))
            lengths.append(n)
            used += 1
    if used < 2:
        raise ValueError(f"{used} usable sequence(s) in {str(cfg.text_path)!r}; need at least 2 with >= 2 tokens")
    causal = checks["attention_max_above_diagonal"] == 0.0  # every P_h lower-triangular in every sequence
    if loaded.causal_declared and not causal:
        raise ValueError(f"{loaded.name}: its config declares causal attention, but its attention puts weight up to "
                         f"{checks['attention_max_above_diagonal']:.2g} above the diagonal")
    checks["per_head_mean_over_sequences"] = {k: np.round(v / used, 4).tolist() for k, v in per_head.items()}
    checks["excluded_values"] = stats.excluded_counts()
    tokens = f"{min(lengths)}-{max(lengths)} (mean {np.mean(lengths):.1f})"
    attention_input = sub.attention_input if sub is not None else "X_{k-1}"
    config = {"figure": "real", **cfg.to_dict(), "text_file": str(cfg.text_path), "model_name": loaded.name,
              "model_path": str(loaded.path), "transformers": loaded.transformers_version, "layers": L, "heads": H,
              # for the figure caption: trials = sequences, tokens = kept tokens per sequence, width = d
              "trials": used, "tokens": tokens, "width": int(X.shape[-1]),
              "kind": _kind(causal, structure.norm),
              "causal": causal, "causal_declared": loaded.causal_declared, "norm": structure.norm,
              "attention_sublayer": structure.sublayer_note, "attention_input": attention_input,
              "last_hidden_after_final_norm": structure.last_after_final_norm,
              "measured": _measured_text(sub is not None, attention_input, causal),
              "removed_tokens": list(removed), "max_tokens_used": min(cfg.max_tokens, loaded.max_length),
              "restriction": _restriction_text(cfg.scope, list(removed), sub is not None),
              "padding": ("right-padded batches of --batch sequences: padding keys get zero weight from the mask and "
                          "padding rows are cut" if loaded.tokenizer.pad_token is not None else
                          "the tokenizer has no pad token: each sequence in its own forward pass, no padding"),
              "averaging": "per sequence: head mean (shares: fraction of heads); then mean and Student-t 95% "
                           "interval over sequences, each weighted equally"}
    result = FigureResult("real", config, stats.rows(list(metrics)), checks, str(device),
                          time.perf_counter() - t0, stats if keep_trials else None)
    result.checks["summary"] = real_summary(result)
    return result


def _kind(causal: bool, norm: str) -> str:
    """``"post-norm encoder, bidirectional attention"``, ``"pre-norm decoder, causal attention"``, ..."""
    kind = f"{'decoder, causal' if causal else 'encoder, bidirectional'} attention"
    return f"{norm} {kind}" if norm in ("post-norm", "pre-norm") else f"{kind} ({norm})"


def _measured_text(sublayer: bool, attention_input: str, causal: bool) -> str:
    delta = "delta (causal: max_{i>=2} P_ii exactly)" if causal else "delta"
    text = (f"hidden-state t_sim, t_div and whole-layer r_layer per layer; per head {delta}, sigma, mu, omega, "
            f"asymmetry, column-sum error, special_mass, and C5/C6 on the mixing step P_h A with A = {attention_input}")
    if sublayer:
        return text + ("; attention sub-layer A -> SA(A), recomputed to match the model's own output: xi1/xi2, r, "
                       "C10's r_estimate and r_bound")
    return text + "; not the attention sub-layer's r (not recomputed for this model)"


def _restriction_text(scope: str, removed: list[str], sublayer: bool) -> str:
    if scope == "content":
        dropped = f"{', '.join(removed)} and padding" if removed else "padding (the tokenizer added no special tokens)"
    else:
        dropped = "padding"
    return (f"tokens: {dropped} removed; each attention matrix restricted to the kept tokens and its rows "
            "renormalised to sum to 1 (special_mass = the weight removed); the attention sub-layer is "
            + ("recomputed with the restricted matrices" if sublayer else "not recomputed"))


def _mean(result: FigureResult, metric: str) -> np.ndarray:
    """Per-step means of ``metric``; empty where it was not measured (the sub-layer rows of some models)."""
    return np.asarray(result.series(metric)[1] if metric in result.metrics else [], dtype=float)


def real_summary(result: FigureResult) -> list[str]:
    """A few sentences on what was found, with numbers (printed by the CLI, stored in the JSON): the model, its
    kind and what was measured first."""
    c = result.config
    t_sim, t_div = _mean(result, "t_sim"), _mean(result, "t_div")
    L = len(t_sim) - 1
    odds = t_sim / t_div
    rate = (odds[-1] / odds[0]) ** (1 / L)  # geometric mean per-layer odds growth
    rises = int(np.sum(np.diff(t_sim) > 0))
    r, bound = _mean(result, "r"), _mean(result, "r_bound")
    g = {m: _mean(result, m) for m in ("delta", "sigma", "omega", "asymmetry", "max_column_sum_error",
                                       "special_mass", "share_C6_holds", "share_C5_holds")}
    span = lambda v: f"{v.min():.2f}-{v.max():.2f}"  # noqa: E731
    verdict = ("escalates" if t_sim[-1] > t_sim[0] and rises >= L - 1 else
               "rises overall, not in every layer" if t_sim[-1] > t_sim[0] else "does not escalate")
    last = ", after the final norm" if c.get("last_hidden_after_final_norm") else ""
    whole = {"post-norm": "the whole post-norm layer (residual, LayerNorm, FFN)",
             "pre-norm": "the whole pre-norm layer (residuals, LayerNorms, FFN)"}.get(c.get("norm", "post-norm"),
                                                                                    "the whole layer")
    lines = [
        f"model: {c.get('model_name', MODEL_NAME)}, {c.get('kind', 'post-norm encoder, bidirectional attention')}, "
        f"L = {c.get('layers', L)}, H = {c.get('heads', '?')}; measured: {c.get('measured', 'all rows')}.",
        f"hidden-state t_sim {verdict}: {t_sim[0]:.3f} (embeddings) -> {t_sim[-1]:.3f} (layer {L}{last}); "
        f"t_sim rises in {rises} of {L} layers; odds t_sim/t_div grow {rate:.2f}x per layer on average "
        f"(per layer: {', '.join(f'{v:.3f}' for v in t_sim[1:])}).",
        (f"attention sub-layer alone: r = {span(r)} per layer (C10 symmetric bound {span(bound)}); "
         if len(r) else f"attention sub-layer {c.get('attention_sublayer', 'not recomputed')}; ")
        + f"{whole} gives r_layer = {span(_mean(result, 'r_layer'))}.",
        f"attention (head means, per layer): delta {span(g['delta'])}, sigma {span(g['sigma'])}, "
        f"omega {span(g['omega'])}; asymmetry {span(g['asymmetry'])}, worst column sum off by "
        f"{span(g['max_column_sum_error'])}; {100 * g['special_mass'].mean():.0f}% of attention mass went to "
        f"removed tokens (mean over layers).",
        f"C6 bound r >= 1/(s + delta^2 (1-s)) held in {100 * g['share_C6_holds'].mean():.0f}% of heads "
        f"(per layer {span(g['share_C6_holds'])}; equivalently xi1/xi2 >= 1/delta, by C2); "
        f"C5 itself (a theorem for any row-stochastic P) in {100 * g['share_C5_holds'].mean():.1f}%.",
    ]
    if c.get("causal"):
        lines.append(f"attention is causal (lower-triangular in every head of every sequence): delta = max_{{i>=2}} "
                     f"P_ii exactly, head means {span(g['delta'])} per layer.")
    return lines


def real_title(cfg: RealConfig) -> str:
    kept = "content tokens" if cfg.scope == "content" else "all non-padding tokens"
    model = ("all-MiniLM-L6-v2 (post-norm BERT, L = 6, H = 12)" if cfg.model == MODEL_NAME else
             model_title(cfg.model))
    return (f"Trained attention: {model} on {cfg.text_path.name}\n"
            f"attention restricted to {kept}, rows renormalised; trial = one sequence")


def real_panels(result: FigureResult) -> list:
    from ..output.plotting import Panel

    sublayer = "r" in result.metrics
    rate = (Panel("escalation rate per layer", ("r_layer", "r", "r_bound"), "r = t_sim(out)/t_sim(in)",
                  labels=("whole layer X_{k-1} -> X_k", "attention sub-layer", "C10 bound (symmetric P)"),
                  predicted=("r_bound",)) if sublayer else
            Panel("escalation rate per layer (attention sub-layer not recomputed)", ("r_layer",),
                  "r = t_sim(out)/t_sim(in)", labels=("whole layer X_{k-1} -> X_k",)))
    return [
        Panel("hidden state X_k (step 0 = embeddings)", ("t_sim", "t_div"), "share of ||X||^2", bounds=(0, 1)),
        rate,
        Panel("attention of layer k (D5), head means", ("delta", "sigma", "mu", "omega", "asymmetry"), "value"),
        Panel("shares of heads / attention mass", ("share_C5_holds", "share_C6_holds", "special_mass"), "share",
              labels=("C5 holds (theorem for any P)", "C6 bound holds (= xi1/xi2 >= 1/delta)",
                      "attention mass on removed tokens"), bounds=(0, 1)),
    ]


def real_findings(result: FigureResult) -> dict:
    """The numbers README quotes from this run (see :mod:`simulations.readme`): per-layer means (index 0 =
    layer 1; t_sim from the embeddings on), C6's share of heads, C3's and C5's checks, and what model was
    measured (name, kind, which rows)."""
    q = Quoter(result)
    per_layer = {m: [v for _, v in sorted(q.means(m).items())] if m in result.metrics else [] for m in REAL_METRICS}
    t_sim, t_div = per_layer["t_sim"], per_layer["t_div"]
    L = len(t_sim) - 1
    c, cfg = result.checks, result.config
    return q.finish({
        "layers": L, "sequences": result.trials, "scope": cfg.get("scope"),
        "t_sim": t_sim, "odds_growth_per_layer": ((t_sim[-1] / t_div[-1]) / (t_sim[0] / t_div[0])) ** (1 / L),
        "layers_t_sim_rises": sum(b > a for a, b in zip(t_sim, t_sim[1:])),
        **{m: per_layer[m] for m in ("r", "r_bound", "r_layer", "asymmetry", "max_column_sum_error",
                                     "special_mass", "share_C6_holds", "share_C5_holds", "delta")},
        "share_C6_holds_overall": sum(per_layer["share_C6_holds"]) / L,
        "C5_violations": c.get("C5_violations"), "C3_max_row_sum_error": c.get("C3_max_row_sum_error"),
        "model": cfg.get("model_name", MODEL_NAME), "kind": cfg.get("kind"), "causal": cfg.get("causal", False),
        "attention_input": cfg.get("attention_input", "X_{k-1}"), "sublayer": cfg.get("attention_sublayer"),
        "last_after_final_norm": cfg.get("last_hidden_after_final_norm", False),
        "removed": "/".join(cfg.get("removed_tokens", [])), "measured": cfg.get("measured"),
    })


def render_real_findings(f: dict) -> str:
    """README's text of a run. The bundled model (and a record from before ``--model`` existed) keeps the
    README's wording; any other model is named with its kind, and its text says what was measured."""
    t_sim, r, bound, r_layer = f["t_sim"], f["r"], f["r_bound"], f["r_layer"]
    L = f["layers"]
    bundled = f.get("model", MODEL_NAME) == MODEL_NAME
    pace = "slowly" if f["odds_growth_per_layer"] < 1.5 else "quickly"
    trend = f"it escalates, {pace}" if f["odds_growth_per_layer"] > 1 else "it does not escalate"
    whole = ", ".join(f"{v:.2f}" for v in r_layer)
    c6 = f["share_C6_holds"]
    c5 = ("C5's general bounds hold in every head, as they must for any row-stochastic P" if f["C5_violations"] == 0
          else f"C5's general bounds FAIL in {f['C5_violations']} head-layer cases")
    if f["scope"] != "content":
        removed = "the removed tokens"
    else:
        removed = f.get("removed", "[CLS]/[SEP]") or "special tokens (none occur)"
    who = "the trained encoder" if bundled else f["model"]
    about = f"{f['sequences']} sequences" if bundled else f"a trained {f['kind']}; {f['sequences']} sequences"
    last = "; the last after the model's final norm" if f.get("last_after_final_norm") else ""
    text = (f"Hidden-state t_sim of {who} ({about}) goes {series_text(t_sim)} (embeddings, "
            f"then layers 1-{L}{last}), rising in {f['layers_t_sim_rises']} of {L} layers, odds growing about "
            f"{sig(f['odds_growth_per_layer'], 3)}x per layer: {trend}. ")
    if r:
        above = ("above C10's symmetric bound in every layer" if all(a > b for a, b in zip(r, bound)) else
                 f"above C10's symmetric bound in {sum(a > b for a, b in zip(r, bound))} of {L} layers")
        after = f", {span(r[1:])} after" if L > 1 else ""
        if bundled:
            text += (f"The attention sub-layer alone escalates strongly (r = {sig(r[0])} at layer 1{after}, {above}), "
                     f"but residual, LayerNorm and FFN bring the whole layer down to r = {whole}. ")
        else:
            text += (f"The attention sub-layer alone (input {f['attention_input']}) gives r = {sig(r[0])} at layer "
                     f"1{after}, {above}; the whole layer gives r = {whole}. ")
    else:
        note = f.get("sublayer") or "not recomputed"
        text += f"The attention sub-layer is {note}; the whole layer gives r = {whole}. "
    if f.get("causal"):
        text += (f"Its attention is causal (lower-triangular), so delta = max_{{i>=2}} P_ii exactly: head means "
                 f"{span(f['delta'])}. ")
    text += (f"Trained attention is far from C6's hypotheses: asymmetry {span(f['asymmetry'])}, the worst column sum "
             f"off by {span(f['max_column_sum_error'])}, and {span([100 * v for v in f['special_mass']])}% of each "
             f"row's weight on {removed}; still, C6's bound holds in {span([100 * v for v in c6])}% of heads per "
             f"layer ({sig(100 * f['share_C6_holds_overall'])}% overall). {c5} (C3 checked: rows sum to 1 within "
             f"{sig(f['C3_max_row_sum_error'], 1)}).")
    if not bundled and f.get("measured"):
        text += f" Measured: {f['measured']}."
    return text
