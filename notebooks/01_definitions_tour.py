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
# # 01 Definitions tour: t_sim, t_div, xi, r, delta, sigma, mu, omega
#
# The quantities of `shared/THEORY.md` (D1-D5) on examples small enough to draw. Everything comes from
# `theory`; this notebook only calls and plots.
#
# | symbol | definition | `theory` |
# |---|---|---|
# | t_sim (D1) | `||Pi X||^2 / ||X||^2`, the share of the mean token | `token_similarity` |
# | t_div (D1) | `||Pi_perp X||^2 / ||X||^2`, computed from the centred tokens | `token_diversity` |
# | odds (D2) | `t_sim / t_div` | `similarity_odds` |
# | xi1, xi2 (D3) | growth of the mean part and of the centred part under a map `X -> Y` | `growth_factors` |
# | r (D4) | `t_sim(Y) / t_sim(X)`, the escalation rate | `escalation_rate` |
# | delta (D5) | `|lambda_2(P)|`, the second-largest eigenvalue modulus of attention `P` | `slem` |
# | sigma (D5) | `||Pi_perp P Pi_perp||_2`, the largest gain of the centred part | `diversity_gain` |
# | mu (D5) | `||Pi_perp P Pi_perp||_F / sqrt(n-1)`, its root-mean-square gain | `rms_diversity_gain` |
# | omega (D5) | `||P^T 1 - 1|| / sqrt(n)`, the column-sum defect | `column_sum_defect` |

# %% tags=["parameters"]
import os

SMALL = os.environ.get("TSE_NOTEBOOK_SMALL") == "1"  # the test suite sets this: same cells, smaller sizes
SEED = 0
BATCH = 200 if SMALL else 4000  # attention matrices per family in the histograms
N_BATCH = 32  # tokens per attention matrix there (Fig 3's n)

# %%
import matplotlib.pyplot as plt
import numpy as np

import theory as T

g = T.make_generator(SEED)
np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## Token similarity and diversity (D1, D2)
#
# Four tokens in the plane. `Pi X` replaces every token by the mean token `xbar`; `Pi_perp X = X - 1 xbar^T`
# keeps what is left. The two parts are orthogonal, so their squared norms split `||X||^2` (C1).

# %%
X = np.array([[3.0, 1.0], [2.0, 2.5], [1.0, 0.5], [2.5, -0.5]])  # (n, d) = (4, 2)
n = X.shape[0]
xbar = X.mean(0)
s, t = T.token_similarity(X), T.token_diversity(X)
print(f"t_sim = {s:.4f}  (by hand: n ||xbar||^2 / ||X||^2 = {n * xbar @ xbar / (X ** 2).sum():.4f})")
print(f"t_div = {t:.4f},  t_sim + t_div = {s + t:.15f},  odds = {T.similarity_odds(X):.4f}")
print("||Pi X||, ||Pi_perp X|| =", T.split_norms(X))

# %%
fig, ax = plt.subplots(figsize=(5, 5))
ax.scatter(*X.T, s=60, label="tokens x_i")
ax.scatter(*xbar, marker="*", s=250, color="C3", label="mean token xbar (= every row of Pi X)")
ax.annotate("", xy=xbar, xytext=(0, 0), arrowprops=dict(arrowstyle="->", color="C3", lw=2))
for x in X:
    ax.annotate("", xy=x, xytext=xbar, arrowprops=dict(arrowstyle="->", color="C2"))
ax.plot([], [], color="C2", label="rows of Pi_perp X (x_i - xbar)")
ax.axhline(0, color="k", lw=0.5)
ax.axvline(0, color="k", lw=0.5)
ax.set_aspect("equal")
ax.set_title(f"t_sim = {s:.3f}, t_div = {t:.3f}")
ax.legend(fontsize=8, loc="upper left")
plt.show()

# %% [markdown]
# ### C1: what t_sim does not see
# Scaling, an orthogonal map of the features (right multiplication) and a permutation of the tokens (left
# multiplication) leave t_sim unchanged. A shift of all tokens by the same vector changes it.

# %%
U = T.random_orthogonal((), 2, generator=g).numpy()  # (d, d)
S = np.eye(n)[[2, 0, 3, 1]]  # a token permutation
for name, Z in [("X", X), ("-3 X", -3 * X), ("X U", X @ U), ("S X", S @ X), ("X + 1 [5, 5]", X + 5.0)]:
    print(f"{name:>12}: t_sim = {T.token_similarity(Z):.6f}")

# %% [markdown]
# ### Why t_div is computed from the centred tokens
# Two tokens that differ by `eps` in one feature, `X = [[1, 0], [1, eps]]`, have
# `t_div = (eps^2/2) / (2 + eps^2)`. Computing it as `1 - t_sim`
# loses every digit once `eps^2` falls below float64's `2^-52`; in a deep stack t_div reaches 1e-30 within ten
# layers, so the sandbox never does that.

# %%
eps = 2.0 ** -np.arange(0, 64, 2)
Xe = np.broadcast_to(np.array([[1.0, 0.0], [1.0, 0.0]]), (eps.size, 2, 2)).copy()  # (batch, n, d)
Xe[:, 1, 1] = eps
exact = (eps ** 2 / 2) / (2 + eps ** 2)
fig, ax = plt.subplots(figsize=(6, 4))
ax.loglog(eps, exact, "k-", lw=3, alpha=0.3, label="exact (eps^2/2) / (2 + eps^2)")
ax.loglog(eps, T.token_diversity(Xe), "o", ms=4, label="token_diversity(X) (centred)")
ax.loglog(eps, np.maximum(1 - T.token_similarity(Xe), 1e-40), "x", label="1 - token_similarity(X) (0 drawn at 1e-40)")
ax.set_xlabel("eps")
ax.set_ylabel("t_div")
ax.legend(fontsize=8)
ax.set_title("t_div of [[1, 0], [1, eps]]")
plt.show()
print("largest relative error of token_diversity:", np.max(np.abs(T.token_diversity(Xe) / exact - 1)))

# %% [markdown]
# ## Growth factors and the escalation rate (D3, D4)
# One softmax attention step `Y = P X` pulls the tokens towards each other. `xi1` measures how the mean part
# grows, `xi2` how the centred part grows; the rate `r = t_sim(Y)/t_sim(X)` follows from them (C2, notebook 02).

# %%
P = T.softmax_attention((), n, beta=1.5, generator=g).numpy()  # (n, n), row-stochastic, not symmetric
Y = P @ X
xi1, xi2 = T.growth_factors(X, Y)
r = T.escalation_rate(X, Y)
print("P =\n", P)
print(f"xi1 = {xi1:.4f}, xi2 = {xi2:.4f}, r = {r:.4f}; "
      f"C2: xi1^2/(xi1^2 s + xi2^2 (1-s)) = {T.escalation_identity(s, xi1, xi2):.4f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 5))
for ax, Z, name in [(axes[0], X, "X"), (axes[0], Y, "Y = P X")]:
    ax.scatter(*Z.T, s=60, label=f"{name}: t_sim = {T.token_similarity(Z):.3f}")
    ax.scatter(*Z.mean(0), marker="*", s=200, color="C3" if name == "X" else "C1")
for x, y in zip(X, Y):
    axes[0].annotate("", xy=y, xytext=x, arrowprops=dict(arrowstyle="->", color="0.6"))
axes[0].set_aspect("equal")
axes[0].legend(fontsize=8, loc="upper right")
axes[0].set_title("one attention step: tokens move towards each other\n(stars: mean tokens)", fontsize=10)
im = axes[1].imshow(P, cmap="viridis", vmin=0)
fig.colorbar(im, ax=axes[1])
axes[1].set_title("P = softmax(beta Z), rows sum to 1")
axes[1].set_xlabel("key token j")
axes[1].set_ylabel("query token i")
plt.show()

# %% [markdown]
# ## Attention quantities (D5)
# Every row-stochastic P has the eigenvalue 1 with eigenvector **1** (C3); `delta` is the modulus of the next
# eigenvalue. `sigma` and `mu` are the largest and the root-mean-square singular value of P restricted to
# **1**-perp, `omega` measures how far the column sums are from 1 (0 iff P is doubly stochastic, C4).
# Always `delta <= sigma` and `mu <= sigma`; for symmetric P also `sigma = delta` and `mu <= delta`, but for
# softmax attention delta, sigma and mu are three different numbers.

# %%
n6 = 6
families = {
    "softmax(beta Z), beta = 2": T.softmax_attention((), n6, beta=2.0, generator=g),
    "symmetric doubly stochastic": T.random_symmetric_doubly_stochastic((), n6, generator=g),
    "uniform Pi (context broadcasting)": T.uniform_attention(n6),
}
fig, axes = plt.subplots(2, 3, figsize=(13, 8))
for col, (name, Pf) in enumerate(families.items()):
    d_, s_, m_, o_ = (float(f(Pf)) for f in (T.slem, T.diversity_gain, T.rms_diversity_gain, T.column_sum_defect))
    axes[0, col].imshow(Pf.numpy(), cmap="viridis", vmin=0)
    axes[0, col].set_title(f"{name}\ndelta={d_:.3f} sigma={s_:.3f} mu={m_:.3f} omega={o_:.3f}", fontsize=9)
    lam = np.linalg.eigvals(Pf.numpy())
    theta = np.linspace(0, 2 * np.pi, 200)
    axes[1, col].plot(np.cos(theta), np.sin(theta), "k-", lw=0.5, label="unit circle")
    axes[1, col].plot(d_ * np.cos(theta), d_ * np.sin(theta), "C3--", lw=1, label="radius delta")
    axes[1, col].scatter(lam.real, lam.imag, zorder=3, label="eigenvalues of P")
    axes[1, col].set_aspect("equal")
    axes[1, col].legend(fontsize=7, loc="lower left")
plt.tight_layout()
plt.show()

# %% [markdown]
# The same four numbers over many draws at Fig 3's size (n = 32, beta = 4). For symmetric doubly stochastic
# attention sigma coincides with delta and omega vanishes; for softmax attention sigma sits well above delta,
# which is why C6's symmetric-case bound (stated with delta) can fail there (C8, notebook 04).

# %%
batches = {
    "softmax, beta = 4": T.softmax_attention((BATCH,), N_BATCH, beta=4.0, generator=g),
    "symmetric doubly stochastic": T.random_symmetric_doubly_stochastic((BATCH,), N_BATCH, generator=g),
}
quantities = {"delta": T.slem, "sigma": T.diversity_gain, "mu": T.rms_diversity_gain, "omega": T.column_sum_defect}
fig, axes = plt.subplots(1, 4, figsize=(16, 3.5))
for ax, (q, f) in zip(axes, quantities.items()):
    values = {name: f(Pb).numpy() for name, Pb in batches.items()}
    bins = np.histogram_bin_edges(np.concatenate(list(values.values())), bins=60)  # shared by both families
    for name, v in values.items():
        ax.hist(v, bins=bins, alpha=0.6, label=name)
    ax.set_title(f"{q} (n = {N_BATCH}, {BATCH} draws)")
    ax.legend(fontsize=7)
plt.tight_layout()
plt.show()
for name, Pb in batches.items():
    print(f"{name:>28}: " + ", ".join(f"mean {q} = {float(f(Pb).mean()):.3f}" for q, f in quantities.items()))
