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
# # 08 Explorer: Figure 3's chain with de-escalation, live
#
# Sliders for the inverse temperature beta, the number of tokens n, the de-escalation strength tau and the
# depth L, and a choice of the seven attention ensembles of notebook 07. beta sets softmax, causal, sinkhorn and
# banded attention; dirichlet, symmetric and data attention do not use it, and for them the beta slider is
# disabled and the figure's title leaves beta out. Each layer is
#
# `X_k = c_k (I - tau Pi) P_k X_{k-1} W_k`,
#
# with `P_k`, `W_k` and `X_0` drawn exactly as `python -m simulations fig3 --attention ...` draws them and `c_k`
# fig3's rescaling to `||X_k|| = sqrt(n d)`. At tau = 0 it is fig3's chain draw for draw; tau != 0 applies [YZ]'s
# de-escalation (C11) to every layer's output: the mean token is scaled by `1 - tau`, the centred part kept,
# so the layer's similarity odds grow by exactly `(1 - tau)^2 (xi1/xi2)^2`. It is a toy (no residual, LayerNorm
# or FFN: notebook 05 runs de-escalated Transformer stacks), but it shows the mechanism: escalation is the
# odds growth `(xi1/xi2)^2 ~ 1/mu^2` of attention, and de-escalation multiplies it by `(1 - tau)^2`.
#
# The three panels: t_sim and log10 t_div per layer; the distribution of delta against theory's law where one
# is known (`theory.slem_prediction`); the odds growth per layer against the estimate `(1 - tau)^2 / mu^2` and
# C6's bound `(1 - tau)^2 / delta^2` (a theorem per step for symmetric attention only).
#
# The computation and the widgets live in `simulations.explore` (`explore_figure`, `explorer`), tested in
# `tests/test_explore.py`. Without a running kernel (GitHub, nbviewer) the widgets are inert: the static
# figures below are the same function at fixed values.

# %% tags=["parameters"]
import os

SMALL = os.environ.get("TSE_NOTEBOOK_SMALL") == "1"  # the test suite sets this: same cells, smaller sizes
SEED = 0
TRIALS = 8 if SMALL else 64  # chains per redraw (under a second at the defaults below, every ensemble)
TOKENS = 8 if SMALL else 32  # n, fig3's default
DEPTH = 4 if SMALL else 24  # L
WIDTH = 16 if SMALL else 64  # d
BETA = 4.0

# %%
import matplotlib.pyplot as plt

from simulations.explore import explore_figure, explorer

# explore_figure returns a Figure that pyplot does not know (nothing accumulates between redraws), shown as the
# cell's value: this magic registers IPython's display of Figure objects (plt.show() alone would draw nothing)
# %matplotlib inline


# %% [markdown]
# ## At fig3's defaults: escalation
# Softmax attention at beta = 4 without de-escalation: t_sim climbs to 1 within ten layers and t_div falls at a
# linear rate; each layer multiplies the odds by about `1/mu^2`, above C6's symmetric bound `1/delta^2`.

# %%
explore_figure(BETA, TOKENS, 0.0, DEPTH, "softmax", trials=TRIALS, seed=SEED, width=WIDTH)

# %% [markdown]
# ## tau = 0.5: de-escalated
# The same draws with the mean token halved after every layer. The odds no longer grow: t_sim settles where
# what attention moves from the centred part into the mean (the column-sum defect omega, C5) balances what
# de-escalation removes, and the measured odds growth sits at 0, far above the estimate `(1 - tau)^2 / mu^2`,
# which counts only the mean part's own growth and so describes the chain only while the mean part dominates.

# %%
explore_figure(BETA, TOKENS, 0.5, DEPTH, "softmax", trials=TRIALS, seed=SEED, width=WIDTH)

# %% [markdown]
# ## Explore
# Move a slider and release it: the chain reruns (0.3-0.7 s at n = 32, L = 24 on two cores, depending on the
# ensemble; at the sliders' far end, n = 128 and L = 64, 9 s for softmax and 45 s for sinkhorn at beta = 8).
# beta stops at 8, where Sinkhorn scaling stops being reliable in float64. At beta = 0 softmax and sinkhorn
# attention is uniform (`P_k = Pi`): t_div is 0 after one layer, and the rate panel says that the odds growth is
# undefined there, as it does at tau = 1; with both, `X_k = 0` and the panels say that t_sim and t_div are
# undefined too.

# %%
explorer(trials=TRIALS, seed=SEED, width=WIDTH, beta=BETA, tokens=TOKENS, depth=DEPTH)
