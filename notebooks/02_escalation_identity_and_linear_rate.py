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
# # 02 The escalation identity and the linear rate (C2, C6, C7)
#
# * **C2** ([YZ] Prop 2.3): for *any* map `X -> Y`, `r = xi1^2 / (xi1^2 s + xi2^2 (1 - s))` with `s = t_sim(X)`;
#   equivalently the odds grow by `(xi1/xi2)^2`. So `r > 1` exactly when the mean part grows faster than the
#   centred part.
# * **C6**: for symmetric row-stochastic `P` and orthogonal `U`, `r(X, P X U) >= 1/(s + delta^2 (1 - s))`.
# * **C7**: along a chain `X_{k+1} = P_k X_k U_k` of such steps with `delta(P_k) <= dbar`,
#   `t_div(X_k) <= dbar^(2k) / odds(X_0)`: R-linear convergence of t_sim to 1 with rate `dbar^2`.
#   It is not Q-linear with ratio `dbar^2` for t_div (THEORY.md's correction; the README gives a hand
#   counterexample): one step only gives `t_div_{k+1}/t_div_k <= dbar^2 (1 + odds_k)/(dbar^2 + odds_k)`. Both are
#   checked below.

# %% tags=["parameters"]
import os

SMALL = os.environ.get("TSE_NOTEBOOK_SMALL") == "1"  # the test suite sets this: same cells, smaller sizes
SEED = 0
BATCH = 300 if SMALL else 4000  # steps per map family (C2, C6) and chains (C7)
N, D = 8, 4  # tokens and features
DEPTH = 8 if SMALL else 20  # chain length (C7)

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

import theory as T

g = T.make_generator(SEED)

# %% [markdown]
# ## C2: the escalation identity holds for every map
# Inputs with a spread of similarities (iid tokens plus a random shared offset), pushed through maps of very
# different kinds: softmax attention with Gaussian weights, an arbitrary matrix acting on the tokens (not
# row-stochastic), a residual attention layer, LayerNorm (nonlinear) and de-escalation.

# %%
X = T.random_tokens((BATCH,), N, D, generator=g)
X = X + 3 * torch.rand((BATCH, 1, 1), generator=g, dtype=X.dtype) * T.random_gaussian((BATCH,), 1, D, generator=g)
P_soft = T.softmax_attention((BATCH,), N, beta=4.0, generator=g)
W = T.random_gaussian((BATCH,), D, D, std=D ** -0.5, generator=g)
maps = {
    "softmax attention P X W": P_soft @ X @ W,
    "any matrix A X (A Gaussian)": T.random_gaussian((BATCH,), N, N, generator=g) @ X,
    "residual X + P X W": X + P_soft @ X @ W,
    "LayerNorm(X)": T.layer_norm(X),
    "de-escalation (I - 0.5 Pi) X": T.deescalate(X, torch.tensor(0.5)),
}
s, t_div = T.token_similarity(X), T.token_diversity(X)
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
for name, Y in maps.items():
    r = T.escalation_rate(X, Y)
    xi1, xi2 = T.growth_factors(X, Y)
    predicted = T.escalation_identity(s, xi1, xi2, t_div=t_div)
    agree = bool(((r > 1) == (xi1 > xi2)).all())
    print(f"{name:>30}: max |C2 - r|/r = {float(((predicted - r).abs() / r).max()):.1e}; "
          f"r > 1 <=> xi1 > xi2 in every draw: {agree}")
    axes[0].loglog(predicted, r, ".", ms=2, label=name)
    axes[1].loglog(T.odds_growth(xi1, xi2), T.similarity_odds(Y) / T.similarity_odds(X), ".", ms=2, label=name)
axes[0].set_xlabel("xi1^2 / (xi1^2 s + xi2^2 (1-s))")
axes[0].set_ylabel("measured r = t_sim(Y)/t_sim(X)")
axes[0].set_title("C2: the identity (every point on the diagonal)")
axes[1].set_xlabel("(xi1/xi2)^2")
axes[1].set_ylabel("odds(Y)/odds(X)")
axes[1].set_title("C2, odds form")
for ax in axes:
    ax.legend(fontsize=7, markerscale=5)
    ax.grid(True, alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## C6: the lower bound for symmetric attention
# With a symmetric doubly stochastic `P` and an orthogonal `U`, `xi1 = 1` and `xi2 <= delta`, so every step
# lies above the bound `1/(s + delta^2 (1-s))`. The spectral *estimate* `1/(s + mu^2 (1-s))` (mu the RMS gain)
# is what a random `X` typically gets; it is not a bound.

# %%
P = T.random_symmetric_doubly_stochastic((BATCH,), N, generator=g)
U = T.random_orthogonal((BATCH,), D, generator=g)
Y = P @ X @ U
r = T.escalation_rate(X, Y)
bound = T.escalation_lower_bound(s, T.slem(P), t_div=t_div)
estimate = T.spectral_rate_estimate(s, T.rms_diversity_gain(P), t_div=t_div)
slack = T.escalation_bound_slack(X, Y, P)
print(f"C6 slack r - bound: min {float(slack.min()):.3g} over {BATCH} steps (>= 0 up to rounding)")
print(f"median r / estimate = {float((r / estimate).median()):.3f}, median r / bound = {float((r / bound).median()):.3f}")

fig, ax = plt.subplots(figsize=(6, 5))
ax.loglog(bound - 1, r - 1, ".", ms=3, label="C6 bound 1/(s + delta^2 (1-s))")
ax.loglog(estimate - 1, r - 1, ".", ms=3, alpha=0.5, label="spectral estimate 1/(s + mu^2 (1-s))")
lim = [float((r - 1).min()) / 2, float((r - 1).max()) * 2]
ax.loglog(lim, lim, "k--", lw=1, label="equality")
ax.set_xlabel("predicted r - 1")
ax.set_ylabel("measured r - 1")
ax.set_title(f"C6: symmetric P, orthogonal U (n = {N}, d = {D})")
ax.legend(fontsize=8, markerscale=4)
ax.grid(True, alpha=0.3)
plt.show()

# %% [markdown]
# ## C7: the linear rate along a chain of symmetric attention matrices
# `X_{k+1} = P_k X_k U_k`, every `P_k` a fresh symmetric doubly stochastic matrix, `U_k` orthogonal. For each
# chain `dbar = max_k delta(P_k)`. The bound `dbar^(2k)/odds_0` (`theory.diversity_decay_bound`) holds for
# every chain and every k.
#
# Float64 caveat: the step `P X` rounds at `eps ||X||`, so the centred part, of norm `sqrt(t_div) ||X||`, carries
# a relative error `~ eps / sqrt(t_div)`: about `1e-8` at `t_div = 1e-16`, and all of it once `t_div` nears
# `eps^2 ~ 5e-32`. Per-step ratios are compared only where `t_div_{k+1} > 1e-16`, and a bound counts as failed
# only beyond a relative `1e-6`.

# %%
FLOOR, TOL = 1e-16, 1e-6
chains = {}
for n, d, terms in [(2, 1, 8), (N, D, N)]:  # n = 2: the bound on one step is attained exactly
    Xk = T.random_tokens((BATCH,), n, d, generator=g)
    Xk = Xk + torch.rand((BATCH, 1, 1), generator=g, dtype=Xk.dtype) * T.random_gaussian((BATCH,), 1, d, generator=g)
    odds0 = T.similarity_odds(Xk)
    t_divs, odds, deltas = [T.token_diversity(Xk)], [odds0], []
    for k in range(DEPTH):
        Pk = T.random_symmetric_doubly_stochastic((BATCH,), n, terms=terms, generator=g)
        Xk = Pk @ Xk @ T.random_orthogonal((BATCH,), d, generator=g)
        deltas.append(T.slem(Pk))
        t_divs.append(T.token_diversity(Xk))
        odds.append(T.similarity_odds(Xk))
    chains[n] = {"t_div": torch.stack(t_divs, -1), "odds": torch.stack(odds, -1),  # (BATCH, DEPTH + 1)
                 "delta": torch.stack(deltas, -1), "odds0": odds0}  # delta: (BATCH, DEPTH)

c = chains[N]
dbar = c["delta"].amax(-1)  # (BATCH,)
k = torch.arange(DEPTH + 1, dtype=torch.float64)
decay_bound = T.diversity_decay_bound(c["odds0"][:, None], dbar[:, None], k)  # (BATCH, DEPTH + 1)
print(f"n = {N}: max over chains and k of t_div_k / (dbar^(2k)/odds_0) = {float((c['t_div'] / decay_bound).max()):.4f}"
      " (C7 holds iff <= 1)")

fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
for i in range(4):
    line, = axes[0].semilogy(k, c["t_div"][i], "o-", ms=3, label=f"chain {i}: t_div_k")
    axes[0].semilogy(k, decay_bound[i], "--", color=line.get_color(), label=f"dbar^(2k)/odds_0, dbar = {float(dbar[i]):.2f}")
axes[0].set_xlabel("k")
axes[0].set_ylabel("t_div(X_k)")
axes[0].set_title(f"C7: R-linear decay of t_div (n = {N}, d = {D})")
axes[0].legend(fontsize=7, ncol=2)
axes[1].semilogy(k, (c["t_div"] / decay_bound).T[:, :200], color="C0", alpha=0.1)
axes[1].axhline(1, color="k", ls="--", label="bound")
axes[1].set_xlabel("k")
axes[1].set_ylabel("t_div_k / bound_k")
axes[1].set_title("all chains (up to 200 drawn): at or below 1")
axes[1].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ### One step: the ratio is not `dbar^2`
# Per step, with the step's own `delta_k`: the naive Q-linear claim `t_div_{k+1}/t_div_k <= delta_k^2` fails
# whenever the odds are small and the centred part shrinks by nearly `delta_k`; the corrected bound
# `delta_k^2 (1 + odds_k)/(delta_k^2 + odds_k)` (`theory.diversity_step_ratio_bound`) holds, with equality at
# n = 2, where `xi2 = delta` exactly. Both bounds meet as the odds grow: the asymptotic ratio is `dbar^2`.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
for ax, (n, c) in zip(axes, chains.items()):
    ratio = c["t_div"][:, 1:] / c["t_div"][:, :-1]  # (BATCH, DEPTH)
    ok = c["t_div"][:, 1:] > FLOOR
    corrected = T.diversity_step_ratio_bound(c["odds"][:, :-1], c["delta"])
    naive = c["delta"].square()
    o = c["odds"][:, :-1][ok]
    ax.loglog(o, (ratio / naive)[ok], ".", ms=2, alpha=0.5, label="ratio / delta_k^2 (naive Q-linear)")
    ax.loglog(o, (ratio / corrected)[ok], ".", ms=2, alpha=0.5, label="ratio / corrected bound")
    ax.axhline(1, color="k", ls="--", lw=1)
    ax.set_xlabel("odds_k = t_sim/t_div before the step")
    ax.set_title(f"n = {n}: naive bound fails in {float((ratio / naive > 1 + TOL)[ok].double().mean()):.1%} of steps,\n"
                 f"corrected bound in {float((ratio / corrected > 1 + TOL)[ok].double().mean()):.1%}", fontsize=10)
    ax.legend(fontsize=8, markerscale=5)
    ax.grid(True, alpha=0.3)
axes[0].set_ylabel("t_div_{k+1}/t_div_k relative to a bound")
plt.tight_layout()
plt.show()

# %% [markdown]
# The README's hand counterexample to the Q-linear reading: `X = [1, 0]^T` (`s = 1/2`),
# `P = [[3/4, 1/4], [1/4, 3/4]]` (`delta = 1/2`).

# %%
X2 = np.array([[1.0], [0.0]])
P2 = np.array([[0.75, 0.25], [0.25, 0.75]])
Y2 = P2 @ X2
print(f"delta = {T.slem(P2):.3f}; t_div: {T.token_diversity(X2):.3f} -> {T.token_diversity(Y2):.3f}, "
      f"ratio {T.token_diversity(Y2) / T.token_diversity(X2):.3f} > delta^2 = {T.slem(P2) ** 2:.3f}; "
      f"corrected bound {T.diversity_step_ratio_bound(T.similarity_odds(X2), T.slem(P2)):.3f}")
