# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version,-jupytext.text_representation.format_version
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 The lab: attention ensembles, the literature's collapse metrics, sweeps, decoders vs encoders
#
# Figure 3's chain `X_k = P_k X_{k-1} W_k` runs on seven attention ensembles (`Fig3Config(attention=...)`,
# `python -m simulations fig3 --attention ...`). Each is a seeded batched sampler in `theory`, and five of them
# come with a law for their spectral gap, i.e. for `delta = |lambda_2(P)|` (`theory.slem_prediction`, claimed to
# hold where `theory.prediction_regime` says so). This notebook
#
# 1. draws each ensemble and measures `delta` against its law, over the size n and the temperature beta;
# 2. puts the literature's collapse metrics (stable rank, mean cosine, Dong et al.'s residual) beside t_div on
#    the same trajectories;
# 3. runs a sweep over beta x n and draws its phase diagram (`simulations.studies.sweep`, the CLI's
#    `python -m simulations sweep`);
# 4. sets causal (decoder) attention against full (encoder) attention.

# %% tags=["parameters"]
import os

SMALL = os.environ.get("TSE_NOTEBOOK_SMALL") == "1"  # the test suite sets this: same cells, smaller sizes
SEED = 0
BATCH = 100 if SMALL else 500  # attention matrices per ensemble for the delta distributions (n = 32)
SIZES = (8, 16) if SMALL else (8, 16, 32, 64)  # n for the size laws
SIZE_BATCH = 50 if SMALL else 150  # matrices per (ensemble, n)
TRIALS = 10 if SMALL else 100  # fig3 trials per ensemble (the CLI default is 1000)
DEPTH = 6 if SMALL else 24
SWEEP = {"beta": "0.5,1", "tokens": "8,16"} if SMALL else {"beta": "0.5,1,2,4", "tokens": "16,32"}
SWEEP_TRIALS = 5 if SMALL else 40  # per grid point

# %%
import tempfile

import matplotlib.pyplot as plt
import numpy as np

import theory as T
from simulations import Fig3Config, simulate_fig3
from simulations.output.sweep_plot import plot_sweep
from simulations.studies.sweep import parse_grid, run_sweep
from simulations.studies.sweep_findings import render_sweep_findings, sweep_findings

g = T.make_generator(SEED)
np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## The seven ensembles
# One matrix of each at n = 16. `softmax` is [YZ]'s Figure 3 (scores iid, independent of X); `causal` masks it
# to `j <= i` (decoders); `dirichlet` has rows Dirichlet(alpha); `sinkhorn` scales softmax to doubly stochastic
# (Sinkformers); `banded` keeps `|i - j| <= w` (local attention); `symmetric` is a Birkhoff mixture of
# permutations (C6's hypotheses); `data` is `softmax(X W_Q (X W_K)^T / sqrt d)`, the only one that depends on X.

# %%
n16 = 16
X16 = T.random_tokens((), n16, 64, generator=g)
examples = {
    "softmax (beta = 1)": T.softmax_attention((), n16, beta=1.0, generator=g),
    "causal (beta = 1)": T.causal_attention((), n16, beta=1.0, generator=g),
    "dirichlet (alpha = 1)": T.dirichlet_attention((), n16, alpha=1.0, generator=g),
    "sinkhorn (beta = 1)": T.sinkhorn_attention((), n16, beta=1.0, generator=g),
    "banded (beta = 1, w = 2)": T.banded_attention((), n16, beta=1.0, window=2, generator=g),
    "symmetric (Birkhoff)": T.random_symmetric_doubly_stochastic((), n16, generator=g),
    "data (iid tokens X)": T.data_attention(X16, generator=g),
    "uniform Pi (context broadcasting)": T.uniform_attention(n16),
}
fig, axes = plt.subplots(2, 4, figsize=(16, 8))
for ax, (name, P) in zip(axes.flat, examples.items()):
    im = ax.imshow(P.numpy(), cmap="viridis", vmin=0)
    ax.set_title(f"{name}\ndelta = {float(T.slem(P)):.3f}, omega = {float(T.column_sum_defect(P)):.2g}", fontsize=9)
    ax.set_xlabel("key token j")
    ax.set_ylabel("query token i")
    fig.colorbar(im, ax=ax, shrink=0.7)
fig.suptitle(f"One attention matrix of each ensemble (n = {n16}); every row sums to 1")
plt.tight_layout()
plt.show()
for name, law in T.SLEM_LAWS.items():
    print(f"{name:>9}: {law}")

# %% [markdown]
# ## delta against its law
# Each law is for the mean of delta over the ensemble. Below: the distribution of delta at n = 32 for each
# ensemble and two temperatures, with the law's value where one is known (dashed where it is claimed to hold,
# dotted outside its regime; the circular law at beta = 4 predicts a delta far above 1, so it is not drawn).

# %%
n32 = 32
ensembles = {  # name -> (sampler, keyword arguments)
    "softmax": (T.softmax_attention, {}), "causal": (T.causal_attention, {}),
    "sinkhorn": (T.sinkhorn_attention, {}), "banded": (T.banded_attention, {"window": 2}),
}
fig, axes = plt.subplots(1, 5, figsize=(20, 3.8))
rows = []
for ax, (name, (sampler, kw)) in zip(axes, ensembles.items()):
    for beta, color in ((1.0, "C0"), (4.0, "C1")):
        delta = T.slem(sampler((BATCH,), n32, beta=beta, generator=g, **kw)).numpy()
        law = T.slem_prediction(name, n32, beta=beta, **kw)
        held = T.prediction_regime(name, n32, beta=beta, **kw)
        ax.hist(delta, bins=40, alpha=0.6, color=color, label=f"beta = {beta:g}: mean {delta.mean():.3f}")
        if law <= 1:
            ax.axvline(law, color=color, ls="--" if held else ":", lw=2,
                       label=f"law {law:.3f}" + ("" if held else " (outside its regime)"))
        rows.append((name, f"beta = {beta:g}", delta.mean(), law, held))
    ax.set_title(name)
    ax.set_xlabel("delta")
    ax.legend(fontsize=7)
for alpha, color in ((0.5, "C0"), (4.0, "C1")):
    delta = T.slem(T.dirichlet_attention((BATCH,), n32, alpha=alpha, generator=g)).numpy()
    law = T.slem_prediction("dirichlet", n32, alpha=alpha)
    axes[4].hist(delta, bins=40, alpha=0.6, color=color, label=f"alpha = {alpha:g}: mean {delta.mean():.3f}")
    axes[4].axvline(law, color=color, ls="--", lw=2, label=f"law {law:.3f}")
    held = T.prediction_regime("dirichlet", n32, alpha=alpha)
    rows.append(("dirichlet", f"alpha = {alpha:g}", delta.mean(), law, held))
axes[4].set_title("dirichlet")
axes[4].set_xlabel("delta")
axes[4].legend(fontsize=7)
axes[0].set_ylabel(f"count ({BATCH} matrices)")
fig.suptitle(f"delta = |lambda_2(P)| at n = {n32}: measured distributions and theory's mean")
plt.tight_layout()
plt.show()
print(f"{'ensemble':>10} {'':>12} {'measured':>9} {'law':>10}  regime")
for name, where, measured, law, held in rows:
    print(f"{name:>10} {where:>12} {measured:9.4f} {law:10.4g}  {'holds' if held else 'outside'}")

# %% [markdown]
# ### Over the size n
# The circular law says `delta ~ kappa / sqrt(n)`: a straight line of slope -1/2 on log-log axes. The banded
# chain at beta = 0 (uniform weights in its band, where the law is claimed) mixes diffusively instead: its gap
# `1 - delta` closes like `1/n^2` (random weights, beta > 0, make the walk lazier and the gap smaller still,
# `theory.prediction_regime` says so). Causal attention at beta = 0 has
# `P_ii = 1/i`, so `delta = P_22 = 1/2` exactly at every n; as beta grows, `E delta -> 1 - 1/n`.

# %%
size_laws = {  # label -> (ensemble name, sampler, keyword arguments)
    "softmax, beta = 0.5": ("softmax", T.softmax_attention, {"beta": 0.5}),
    "softmax, beta = 1": ("softmax", T.softmax_attention, {"beta": 1.0}),
    "sinkhorn, beta = 1": ("sinkhorn", T.sinkhorn_attention, {"beta": 1.0}),
    "dirichlet, alpha = 1": ("dirichlet", T.dirichlet_attention, {"alpha": 1.0}),
}
fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
for i, (label, (name, sampler, kw)) in enumerate(size_laws.items()):
    measured = [float(T.slem(sampler((SIZE_BATCH,), n, generator=g, **kw)).mean()) for n in SIZES]
    axes[0].loglog(SIZES, measured, "o", color=f"C{i}", label=f"{label}: measured")
    axes[0].loglog(SIZES, [T.slem_prediction(name, n, **kw) for n in SIZES], "--", color=f"C{i}", label="law")
axes[0].set_xlabel("n (tokens)")
axes[0].set_ylabel("mean delta")
axes[0].set_title("circular law: delta ~ kappa / sqrt(n)")
axes[0].legend(fontsize=7, ncol=2)
for i, w in enumerate((1, 2)):
    gap = [float((1 - T.slem(T.banded_attention((SIZE_BATCH,), n, beta=0.0, window=w, generator=g))).mean())
           for n in SIZES]
    law = [1 - T.slem_prediction("banded", n, beta=0.0, window=w) for n in SIZES]
    axes[1].loglog(SIZES, gap, "o", color=f"C{i}", label=f"w = {w}, beta = 0: measured")
    axes[1].loglog(SIZES, law, "--", color=f"C{i}", label="law pi^2 w(w+1) / (6 n^2)")
axes[1].set_xlabel("n (tokens)")
axes[1].set_ylabel("mean spectral gap 1 - delta")
axes[1].set_title("banded attention: a diffusive gap ~ 1/n^2")
axes[1].legend(fontsize=7)
betas = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
for i, n in enumerate(SIZES[-2:]):
    causal = [float(T.slem(T.causal_attention((SIZE_BATCH,), n, beta=b, generator=g)).mean()) for b in betas]
    axes[2].plot(betas, causal, "o-", color=f"C{i}", label=f"n = {n}: measured")
    axes[2].axhline(1 - 1 / n, color=f"C{i}", ls=":", label=f"beta -> inf limit 1 - 1/n = {1 - 1 / n:.3f}")
axes[2].axhline(0.5, color="k", ls="--", label="beta = 0: exactly 1/2")
axes[2].set_xlabel("beta")
axes[2].set_ylabel("mean delta")
axes[2].set_title("causal attention: delta = max_{i>=2} P_ii")
axes[2].legend(fontsize=7)
for ax in axes:
    ax.grid(True, which="both", alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The literature's collapse metrics on one trajectory
# Every fig3 step records, beside [YZ]'s t_sim and t_div, the stable rank `||X||_F^2 / ||X||_2^2` (rank
# collapse), the mean pairwise cosine of the tokens and Dong et al.'s residual (the distance of X to the nearest
# `1 x^T`, relative). Below all four on the same chains, one run per ensemble at Figure 3's sizes (beta = 4).
# Stable rank lies between 1 and `1/t_sim`, so token collapse forces rank collapse; the converse fails, and
# banded attention shows it: its stable rank nears 1 while t_div, the residual and the cosines say the tokens
# are far from equal (they spread along one direction). Near collapse the stable rank and the mean cosine read
# 1 to rounding, so they are drawn as their excesses `stable rank - 1` and `1 - mean cosine`, which the chain
# computes from its split parts (exact however small): they fall with t_div.

# %%
runs = {attention: simulate_fig3(Fig3Config(attention=attention, trials=TRIALS, depth=DEPTH, seed=SEED,
                                            device="cpu"), progress=False)
        for attention in ("softmax", "causal", "dirichlet", "sinkhorn", "banded", "symmetric", "data")}
metrics = {"t_div": ("token diversity t_div ([YZ])", True), "dong_residual": ("Dong et al.'s residual", True),
           "stable_rank_minus_1": ("stable rank - 1 (||X||_F^2 / ||X||_2^2 - 1)", True),
           "one_minus_mean_cosine": ("1 - mean pairwise cosine of the tokens", True)}
fig, axes = plt.subplots(1, 4, figsize=(20, 4.5))
for ax, (metric, (title, log)) in zip(axes, metrics.items()):
    for attention, res in runs.items():
        steps, mean = res.series(metric)[:2]
        mean = np.asarray(mean)
        shown = mean > 0 if log else np.isfinite(mean)  # data attention's t_div leaves the float range
        ax.plot(np.asarray(steps)[shown], mean[shown], "o-", ms=2, label=attention)
    if log:  # data attention falls doubly exponentially: the axis shows the other ensembles' range
        ax.set_yscale("log")
        others = np.concatenate([res.series(metric)[1] for a, res in runs.items() if a != "data"])
        others = others[others > 0]
        ax.set_ylim(0.1 * others.min(), 10 * others.max())
    ax.set_xlabel("layer k")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
axes[0].set_ylabel(f"mean over {TRIALS} trials")
axes[0].legend(fontsize=8)
fig.suptitle(f"Collapse metrics on the same fig3 trajectories (n = 32, d = 64, beta = 4, L = {DEPTH})")
plt.tight_layout()
plt.show()
print(f"{'attention':>10} {'t_div':>10} {'residual':>10} {'stable rank':>12} {'- 1':>10} {'mean cosine':>12} "
      f"{'1 -':>10}  (last layer)")
for attention, res in runs.items():
    last = {m: res.series(m)[1][-1] for m in (*metrics, "stable_rank", "mean_cosine")}
    print(f"{attention:>10} {last['t_div']:10.3g} {last['dong_residual']:10.3g} {last['stable_rank']:12.4g} "
          f"{last['stable_rank_minus_1']:10.3g} {last['mean_cosine']:12.4g} {last['one_minus_mean_cosine']:10.3g}")

# %% [markdown]
# ## A sweep and its phase diagram
# `parse_grid` turns comma lists into a grid (every point's config validated before anything runs) and
# `run_sweep` runs fig3 at every point; `plot_sweep` draws one heat map per summary scalar: the share of steps
# where C6's per-step bound fails, mean delta beside the circular law (blank outside its regime), the fitted
# linear rate, and t_sim and the literature's metrics at the last layer. The CLI makes the same diagram:
# `python -m simulations sweep fig3 --beta ... --tokens ... --out DIR`.

# %%
grid = parse_grid("fig3", Fig3Config, {**SWEEP, "trials": str(SWEEP_TRIALS), "depth": str(DEPTH), "device": "cpu",
                                       "seed": str(SEED)})
with tempfile.TemporaryDirectory() as out:  # the sweep's resume state lives here while it runs
    results = run_sweep(grid, simulate_fig3, out, progress=False)
fig = plot_sweep("fig3", grid.swept, results,
                 f"fig3 phase diagram over beta x n ({SWEEP_TRIALS} trials per point, L = {DEPTH}, softmax)")
plt.show()
print(render_sweep_findings(sweep_findings("fig3", grid, results)))

# %% [markdown]
# ## Decoders against encoders: causal vs full attention
# A decoder's attention is lower triangular, so its eigenvalues are its diagonal and delta is exact:
# `delta = max_{i >= 2} P_ii` (`theory.slem` reads it off the diagonal; below it is checked against the diagonal
# and against LAPACK). Token 1 sees only itself (`P_11 = 1`): it is a fixed point of every layer, and the chain
# pulls every other token towards it. At the same beta a decoder's delta is much larger than an encoder's
# (the circular law's disc), and approaches `1 - 1/n` as beta grows.

# %%
fig, axes = plt.subplots(1, 4, figsize=(20, 4.2))
for ax, beta in zip(axes[:3], (0.0, 1.0, 4.0)):
    P_dec = T.causal_attention((BATCH,), n32, beta=beta, generator=g)
    P_enc = T.softmax_attention((BATCH,), n32, beta=beta, generator=g)
    d_dec, d_enc = T.slem(P_dec).numpy(), T.slem(P_enc).numpy()
    diag = np.diagonal(P_dec.numpy(), axis1=-2, axis2=-1)[:, 1:].max(-1)  # max_{i>=2} P_ii
    eig = np.sort(np.abs(np.linalg.eigvals(P_dec.numpy())), -1)[:, -2]  # LAPACK, for comparison
    bins = np.linspace(0, 1, 51)
    ax.hist(d_enc, bins=bins, alpha=0.6, label=f"encoder (softmax): mean {d_enc.mean():.3f}")
    ax.hist(d_dec, bins=bins, alpha=0.6, label=f"decoder (causal): mean {d_dec.mean():.3f}")
    ax.set_title(f"beta = {beta:g}: delta at n = {n32}", fontsize=10)
    ax.set_xlabel("delta")
    ax.legend(fontsize=7)
    print(f"beta = {beta:g}: causal delta vs max_(i>=2) P_ii: max |diff| = {np.abs(d_dec - diag).max():.1e}; "
          f"vs LAPACK's |lambda_2|: max |diff| = {np.abs(d_dec - eig).max():.1e}")
axes[0].set_ylabel(f"count ({BATCH} matrices)")
for attention in ("softmax", "causal"):
    steps, mean = runs[attention].series("t_div")[:2]
    axes[3].semilogy(steps, mean, "o-", ms=3, label=f"{attention}: t_div")
    steps, mean = runs[attention].series("t_sim")[:2]
    axes[3].semilogy(steps, mean, "--", label=f"{attention}: t_sim")
axes[3].set_xlabel("layer k")
axes[3].set_ylabel(f"mean over {TRIALS} trials")
axes[3].set_title("fig3 chain, beta = 4: decoder vs encoder", fontsize=10)
axes[3].legend(fontsize=7)
axes[3].grid(True, alpha=0.3)
plt.tight_layout()
plt.show()
for attention in ("softmax", "causal"):
    rate = runs[attention].checks["fitted_rate"]
    print(f"{attention:>8}: mean delta {np.mean(runs[attention].series('delta')[1]):.3f}, fitted linear rate: t_div "
          f"x {rate['t_div_ratio_per_layer']:.3g} per layer (layers {rate['layers'][0]}-{rate['layers'][1]})")

# %% [markdown]
# The decoder has the larger delta, and yet its chain collapses faster (right panel). One layer's delta is not
# the chain's rate when the layers' matrices do not share eigenvectors. The P's act on the left and the W's on
# the right, so `X_L = Q X_0 W_1 ... W_L` (up to scale) with `Q = P_L ... P_1`: the centred part is set by Q's
# gain on it, `sigma(Q)` (D5), reweighted by the common right factor. For the encoder the layers' deltas
# multiply to about Q's gain. For the decoder they do not: a product of triangular matrices is triangular with the product of the
# diagonals as its diagonal, so `delta(Q) = max_{i >= 2} prod_k (P_k)_ii`, and since the largest diagonal entry
# sits at a different token in each layer, Q's delta and gain fall far below the product of the layers' deltas.

# %%
print(f"L = {DEPTH} layers, beta = 4, n = {n32}, {BATCH} chains; means over chains of log10 of:")
print(f"{'attention':>10} {'prod_k delta(P_k)':>18} {'delta(Q)':>9} {'sigma(Q)':>9} {'sqrt(t_div) of fig3':>20}")
for attention, sampler in (("softmax", T.softmax_attention), ("causal", T.causal_attention)):
    P_chain = sampler((DEPTH, BATCH), n32, beta=4.0, generator=g)  # (L, batch, n, n)
    Q = P_chain[0]
    for P in P_chain[1:]:
        Q = P @ Q  # (batch, n, n): P_k ... P_1, row-stochastic (lower triangular for causal)
    per_layer = np.log10(T.slem(P_chain).numpy()).sum(0).mean()
    chain = 0.5 * np.log10(runs[attention].series("t_div")[1][-1])
    print(f"{attention:>10} {per_layer:18.2f} {np.log10(T.slem(Q).numpy()).mean():9.2f} "
          f"{np.log10(T.diversity_gain(Q).numpy()).mean():9.2f} {chain:20.2f}")
diag = np.diagonal(P_chain.numpy(), axis1=-2, axis2=-1)[..., 1:]  # (L, batch, n - 1): (P_k)_ii, i >= 2
print("causal: delta(Q) against max_(i>=2) prod_k (P_k)_ii, largest relative difference:",
      f"{np.abs(T.slem(Q).numpy() / diag.prod(0).max(-1) - 1).max():.1e}")
