"""The Monte Carlo engine and Figure 3: streaming statistics, chunk independence, checks, references."""

import math
import sys

import numpy as np
import pytest
import torch
from scipy import stats as sps

import theory as T
from simulations.engine.config import Fig3Config
from simulations.engine.runner import iter_chunks, run_chunks
from simulations.studies.fig3 import draw_step, initial_tokens, simulate_fig3
from simulations.engine.stats import StreamingStats, standard_error

SMALL = dict(tokens=6, width=5, depth=4, trials=60, rng_block=20, chunk=60, device="cpu")


def test_streaming_stats_merge_blocks_like_one_pass_and_skip_undefined_values():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(103, 3))
    v[5, 1] = np.nan  # undefined at step 1 for trial 5
    st = StreamingStats(3)
    for lo in range(0, 103, 17):
        st.update({"m": torch.from_numpy(v[lo:lo + 17])})
    col = [v[np.isfinite(v[:, k]), k] for k in range(3)]
    np.testing.assert_allclose(st.mean("m"), [c.mean() for c in col], rtol=1e-13)
    assert st.count("m").tolist() == [103, 102, 103] and st.excluded["m"] == 1
    half = [sps.t.ppf(0.975, len(c) - 1) * c.std(ddof=1) / math.sqrt(len(c)) for c in col]
    np.testing.assert_allclose(st.ci_halfwidth("m"), half, rtol=1e-12)


def test_standard_error_read_back_from_a_row_is_the_sample_standard_error():
    # the benchmarks compare runs through their CSV rows, which keep the 95% interval, not the standard error
    rng = np.random.default_rng(2)
    v = rng.normal(size=(9, 2)) * [1.0, 1e-3]
    st = StreamingStats(2)
    st.update({"m": torch.from_numpy(v)})
    for row in st.rows():
        se = v[:, row.step].std(ddof=1) / 3.0
        assert math.isclose(standard_error(row.ci_low, row.ci_high, row.count), se, rel_tol=1e-12)
    assert math.isnan(standard_error(1.0, 1.0, 1))


def test_block_summary_is_count_mean_root_mean_square_deviation_and_extremes_of_the_finite_values():
    # one summary for every device (on CUDA only (steps,) arrays cross to the host): checked against values
    # formed independently here, with undefined values and empty early steps
    from simulations.engine.stats import _summary

    rng = np.random.default_rng(1)
    v = rng.normal(size=(50, 4)) * 1e3
    v[3, 0], v[7, 2], v[:, 3] = np.nan, np.inf, np.nan  # a step with no defined value at all
    got = _summary(torch.from_numpy(v), 1)
    cols = [v[np.isfinite(v[:, j]), j] for j in range(4)]
    want = {"count": [0] + [c.size for c in cols], "mean": [0] + [c.mean() if c.size else 0 for c in cols],
            "rms": [0] + [np.sqrt(((c - c.mean()) ** 2).mean()) if c.size else 0 for c in cols],
            "min": [np.inf] + [c.min() if c.size else np.inf for c in cols],
            "max": [-np.inf] + [c.max() if c.size else -np.inf for c in cols]}
    for (name, w), g in zip(want.items(), got):
        np.testing.assert_allclose(g, w, rtol=1e-13, err_msg=name)
    st = StreamingStats(5)
    st.update({"m": torch.from_numpy(v)}, {"m": 1})
    assert int(v.size - got[0].sum()) == st.excluded["m"] == 52
    np.testing.assert_allclose(st.mean("m")[1:3], want["mean"][1:3], rtol=1e-13)


def test_streaming_stats_first_step_leaves_earlier_steps_empty():
    st = StreamingStats(3)
    st.update({"a": torch.ones(4, 3), "r": torch.full((4, 2), 2.0)}, {"r": 1})
    rows = st.rows()
    assert [(r.step, r.metric) for r in rows] == [(0, "a"), (1, "a"), (1, "r"), (2, "a"), (2, "r")]
    assert st.excluded == {"a": 0, "r": 0}


def test_chunks_cover_every_trial_once_in_whole_blocks():
    chunks = list(iter_chunks(130, 0, chunk=60, rng_block=20, device=torch.device("cpu"), dtype=torch.float64))
    assert [c.trials for c in chunks] == [60, 60, 10]
    assert [c.start for c in chunks] == [0, 60, 120]
    with pytest.raises(ValueError, match="multiple of rng_block"):
        next(iter_chunks(10, 0, chunk=30, rng_block=20, device=torch.device("cpu"), dtype=torch.float64))


@pytest.mark.parametrize("attention", ["softmax", "symmetric", "data"])
def test_fig3_results_do_not_depend_on_the_chunk_size(attention):
    runs = [simulate_fig3(Fig3Config(**{**SMALL, "chunk": chunk}, attention=attention), progress=False)
            for chunk in (20, 40, 60)]
    assert runs[0].rows == runs[1].rows == runs[2].rows
    assert runs[0].rows != simulate_fig3(Fig3Config(**{**SMALL, "seed": 1}, attention=attention), progress=False).rows


def test_every_block_is_computed_as_its_own_batch_whatever_the_chunk_and_workers():
    seen = []

    def simulate(block):
        seen.append((block.start, block.trials))
        x = block.random.draw(T.random_gaussian, 3, 2)  # (block trials, 3, 2)
        return {"m": x.sum(dim=(-2, -1))[:, None]}, {"m": 0}

    runs = []
    for chunk, workers in ((20, 1), (60, 1), (60, 2), (120, 3)):
        seen.clear()
        stats = run_chunks(simulate, trials=130, seed=0, steps=1, chunk=chunk, rng_block=20,
                           device=torch.device("cpu"), dtype=torch.float64, workers=workers, progress=False)
        assert sorted(seen) == [(s, min(20, 130 - s)) for s in range(0, 130, 20)]
        runs.append(stats.rows(["m"]))
    assert all(r == runs[0] for r in runs)


def test_fig3_csv_does_not_depend_on_the_chunk_at_the_default_size():
    # At n = 32 a batched GEMM rounds differently for different batch sizes (C = Q^T P Q is one large GEMM per
    # batch): with two blocks per batch, chunk 250 and chunk 1000 gave different last digits of r_bound.
    runs = [simulate_fig3(Fig3Config(trials=1000, depth=1, chunk=chunk, device="cpu"), progress=False).rows
            for chunk in (250, 1000)]
    assert runs[0] == runs[1]


def test_fig3_rows_follow_the_step_convention():
    res = simulate_fig3(Fig3Config(**SMALL), progress=False)
    by_step = {}
    for r in res.rows:
        by_step.setdefault(r.step, set()).add(r.metric)
    assert by_step[0] == {"t_sim", "t_div", "log_t_div", *T.COLLAPSE_METRICS}
    # beta = 4: outside the circular law's regime, so no predicted delta is drawn (it is in the JSON)
    assert all(by_step[k] == {*T.STEP_METRICS, *T.COLLAPSE_METRICS} for k in range(1, 5))
    assert res.checks["delta_prediction"]["in_regime"] is False
    assert all(r.count == 60 and r.ci_low <= r.mean <= r.ci_high for r in res.rows)


def test_fig3_symmetric_variant_checks_the_C6_bound_in_every_step():
    res = simulate_fig3(Fig3Config(**SMALL, attention="symmetric"), progress=False)
    assert res.checks["C6_holds_every_step"] is True
    assert res.checks["C6_violations"] == 0 and res.checks["C6_steps_checked"] == 60 * 4
    assert res.checks["C2_identity_max_rel_error"] < 1e-12 and res.checks["C2_steps_compared"] > 0


def _tight_symmetric_chain(depth: int) -> Fig3Config:
    # n = 2: P = [[1-p, p], [p, 1-p]] maps the centred part to (1 - 2p) times itself, so xi2 = delta and xi1 = 1
    # exactly, with orthogonal W: C6 holds with equality in every step, however small t_div gets.
    return Fig3Config(tokens=2, width=3, depth=depth, trials=40, rng_block=20, chunk=40, device="cpu",
                      attention="symmetric")


def test_fig3_checks_C6_in_every_step_of_a_deep_chain_sharply_enough_to_catch_a_bound_off_by_1e_minus_6(
        monkeypatch):
    cfg = _tight_symmetric_chain(150)
    res = simulate_fig3(cfg, keep_trials=True, progress=False)
    assert res.checks["C6_holds_every_step"] is True and res.checks["C6_steps_checked"] == 40 * 150
    slack = res.stats.trial_values("odds_slack")[:, 1:]
    assert np.abs(slack).max() < 1e-12  # equality, to rounding, at every step
    log_t_div = res.stats.trial_values("log_t_div")
    assert np.isfinite(log_t_div).all() and log_t_div[:, -1].max() < math.log(1e-40)  # below the old floor
    # the same run with delta understated by one part in a million: every step must be flagged
    real = T._step.deviation_stats

    def understated(*args, **kwargs):
        delta, sigma, mu, omega, delta_err = real(*args, **kwargs)
        return delta * (1 - 1e-6), sigma, mu, omega, delta_err

    monkeypatch.setattr(T._step, "deviation_stats", understated)
    fake = simulate_fig3(cfg, progress=False)
    assert fake.checks["C6_holds_every_step"] is False
    assert fake.checks["C6_violations"] == fake.checks["C6_steps_checked"] == 40 * 150


def test_fig3_counts_the_deltas_whose_digits_are_uncertain():
    # nearly one-hot rows (beta = 1000) give nearly defective C: a few percent of deltas are flagged, none at beta 4
    sharp = simulate_fig3(Fig3Config(**{**SMALL, "tokens": 16}, beta=1000.0), progress=False)
    mild = simulate_fig3(Fig3Config(**{**SMALL, "tokens": 16}), progress=False)
    assert sharp.checks["delta_uncertain"]["count"] > 0 and sharp.checks["delta_uncertain"]["tolerance"] == 1e-6
    assert mild.checks["delta_uncertain"]["count"] == 0


def test_fig3_C2_check_catches_a_wrong_split_propagation(monkeypatch):
    good = simulate_fig3(Fig3Config(**SMALL), progress=False)
    assert good.checks["C2_identity_max_rel_error"] < 1e-12
    real = T.attend

    def forgets_the_mean_update(X, D, W, D_exp=None, row=None):  # m' = m W instead of (m + u) W
        Y = real(X, D, W, D_exp, row)
        mean = T._similarity.ldexp(X.mean, X.mean_exp[..., None, None]) @ W
        return T.SplitTokens(mean, Y.centred, torch.zeros_like(Y.mean_exp), Y.centred_exp)

    monkeypatch.setattr(T, "attend", forgets_the_mean_update)
    bad = simulate_fig3(Fig3Config(**SMALL), progress=False)
    assert bad.checks["C2_identity_max_rel_error"] > 1e-3


def test_fig3_symmetric_variant_with_gaussian_weights_reports_rather_than_asserts():
    # C6 is a per-step theorem for orthogonal W only; with Gaussian W at small d single steps do violate it.
    res = simulate_fig3(Fig3Config(**SMALL, attention="symmetric", weights="gaussian"), progress=False)
    assert "C6_holds_every_step" not in res.checks
    assert res.checks["C6_violations"] > 0


def test_fig3_softmax_variant_reports_C8_violations():
    res = simulate_fig3(Fig3Config(**{**SMALL, "tokens": 16, "trials": 200, "chunk": 200}), progress=False)
    assert 0.02 < res.checks["C6_violation_share"] < 0.6
    assert "C6_holds_every_step" not in res.checks


def _reference_loop(cfg: Fig3Config) -> dict[str, np.ndarray]:
    """Independent float64 per-trial numpy loop, fed the engine's random numbers (same block generators and
    draw order); everything computed from them is computed here again, with numpy."""
    n, d, L = cfg.tokens, cfg.width, cfg.depth
    Q = np.linalg.svd(np.ones((1, n)))[2][1:].T  # a basis of 1-perp other than theory's Helmert basis
    per_trial = {m: [] for m in ("t_sim", "t_div", "r", "xi_ratio_minus_1", "delta", "sigma", "mu", "omega", "r_bound",
                                 "r_minus_1", "r_bound_minus_1", "log_t_div", "stable_rank", "mean_cosine",
                                 "dong_residual")}
    for ch in iter_chunks(cfg.trials, cfg.seed, chunk=cfg.chunk, rng_block=cfg.rng_block,
                          device=torch.device("cpu"), dtype=torch.float64):
        for block in ch.blocks:  # one block at a time, in each generator's draw order
            size = block.trials
            X0 = initial_tokens(cfg, block)
            Ps, Ws = [], []
            for _ in range(L):
                attention, W = draw_step(cfg, block, T.split_tokens(X0))  # softmax attention does not look at X
                Ps.append((attention["D"] + 1 / n).numpy())
                Ws.append(W.numpy())
            X0 = X0.numpy()
            for i in range(size):
                X, rows = X0[i], {m: [] for m in per_trial}
                for k in range(L):
                    P = Ps[k][i]
                    Y = P @ X @ Ws[k][i]
                    sx = n * np.sum(X.mean(0) ** 2) / np.sum(X ** 2)
                    sy = n * np.sum(Y.mean(0) ** 2) / np.sum(Y ** 2)
                    cx, cy = X - X.mean(0), Y - Y.mean(0)
                    xi1 = np.linalg.norm(Y.mean(0)) / np.linalg.norm(X.mean(0))
                    xi2 = np.linalg.norm(cy) / np.linalg.norm(cx)
                    C = Q.T @ P @ Q
                    delta = np.abs(np.linalg.eigvals(C)).max()
                    rows["t_div"].append(np.sum(cy ** 2) / np.sum(Y ** 2))
                    rows["t_sim"].append(sy)
                    rows["r"].append(sy / sx)
                    rows["xi_ratio_minus_1"].append(xi1 / xi2 - 1)
                    rows["delta"].append(delta)
                    rows["sigma"].append(np.linalg.norm(C, 2))
                    rows["mu"].append(np.linalg.norm(C) / np.sqrt(n - 1))
                    rows["omega"].append(np.linalg.norm(P.sum(0) - 1) / np.sqrt(n))
                    rows["r_bound"].append(1 / (sx + delta ** 2 * (1 - sx)))
                    rows["r_minus_1"].append(sy / sx - 1)  # fine here: r - 1 is of order one at depth 5
                    rows["r_bound_minus_1"].append(1 / (sx + delta ** 2 * (1 - sx)) - 1)
                    rows["log_t_div"].append(np.log(np.sum(cy ** 2) / np.sum(Y ** 2)))
                    # the literature's metrics, from their definitions
                    sv = np.linalg.svd(Y, compute_uv=False)
                    rows["stable_rank"].append(np.sum(sv ** 2) / sv[0] ** 2)
                    rows["mean_cosine"].append(np.mean([Y[a] @ Y[b] / np.linalg.norm(Y[a]) / np.linalg.norm(Y[b])
                                                        for a in range(n) for b in range(n) if a != b]))
                    comp = lambda A: math.sqrt(np.abs(A).sum(0).max() * np.abs(A).sum(1).max())  # noqa: E731
                    rows["dong_residual"].append(comp(cy) / comp(Y))
                    X = Y / np.linalg.norm(Y) * np.sqrt(n * d)
                for m in per_trial:
                    per_trial[m].append(rows[m])
    return {m: np.array(v) for m, v in per_trial.items()}  # (trials, L)


def _mp_reference(cfg: Fig3Config, trials: int, digits: int) -> dict[str, np.ndarray]:
    """Figure 3's chain in mpmath at ``digits`` significant digits, one trial at a time, fed the engine's random
    numbers (same block generator and draw order) but sharing none of its arithmetic: X, P and Y as plain
    matrices, centred by their exact mean. Data attention from the scores of the whole X, softmax in mpmath."""
    import mpmath as mp

    mp.mp.dps = digits
    n, d, L = cfg.tokens, cfg.width, cfg.depth
    out = {m: np.zeros((trials, L + 1)) for m in ("log_t_div", "r_minus_1", "xi_ratio_minus_1", "delta")}
    block = next(iter_chunks(trials, cfg.seed, chunk=trials, rng_block=trials, device=torch.device("cpu"),
                             dtype=torch.float64)).blocks[0]
    X0 = initial_tokens(cfg, block).numpy()
    Xs = [mp.matrix(X0[i].tolist()) for i in range(trials)]
    ones = mp.matrix([[mp.mpf(1) / n] * n for _ in range(n)])

    def parts(X):
        mean = ones * X
        c = X - mean
        a2 = sum(mean[i, j] ** 2 for i in range(n) for j in range(X.cols))
        b2 = sum(c[i, j] ** 2 for i in range(n) for j in range(X.cols))
        return a2, b2

    for k in range(1, L + 1):
        if cfg.attention == "data":  # the same draws as draw_step: W_Q, W_K, then W
            from simulations.studies.fig3 import _gaussian

            WQ, WK = _gaussian(block, d, d, std=d ** -0.5).numpy(), _gaussian(block, d, d, std=d ** -0.5).numpy()
            W = _gaussian(block, d, d, std=1 / math.sqrt(d)).numpy()
        else:
            attention, W = draw_step(cfg, block, None)
            P_all = attention["D"].numpy()
            W = W.numpy()
        for i in range(trials):
            X = Xs[i]
            if cfg.attention == "data":
                S = (X * mp.matrix(WQ[i].tolist())) * (X * mp.matrix(WK[i].tolist())).T / mp.sqrt(d)
                P = mp.matrix(n, n)
                for a in range(n):
                    e = [mp.exp(S[a, b]) for b in range(n)]
                    z = sum(e)
                    for b in range(n):
                        P[a, b] = e[b] / z
            else:  # the engine's D with its rows centred exactly, plus 1/n: P 1 = 1 exactly, as C3 has it
                D = mp.matrix((P_all[i]).tolist())
                P = D - D * ones + ones  # a float D's row sums are ~eps, not 0; the model's P is row-stochastic
            Y = P * X * mp.matrix(W[i].tolist())
            ax, bx = parts(X)
            ay, by = parts(Y)
            s, t, t_y = ax / (ax + bx), bx / (ax + bx), by / (ay + by)
            out["log_t_div"][i, k] = float(mp.log(t_y))
            out["r_minus_1"][i, k] = float((t - t_y) / s)
            out["xi_ratio_minus_1"][i, k] = float(mp.sqrt((ay / ax) / (by / bx)) - 1)
            Qb = mp.matrix(n, n - 1)  # Helmert-free basis of 1-perp: Gram-Schmidt of e_j - e_n
            basis = []
            for j in range(n - 1):
                v = [mp.mpf(0)] * n
                v[j], v[n - 1] = mp.mpf(1), mp.mpf(-1)
                for u in basis:
                    dot = sum(v[q] * u[q] for q in range(n))
                    v = [v[q] - dot * u[q] for q in range(n)]
                norm = mp.sqrt(sum(x * x for x in v))
                basis.append([x / norm for x in v])
            for j, u in enumerate(basis):
                for q in range(n):
                    Qb[q, j] = u[q]
            C = Qb.T * P * Qb
            out["delta"][i, k] = float(max(abs(ev) for ev in mp.eig(C, left=False, right=False)))
            Xs[i] = Y / mp.sqrt(ay + by) * mp.sqrt(n * d)
    return out


@pytest.mark.parametrize("attention, depth, digits", [("softmax", 150, 120), ("symmetric", 100, 200),
                                                      ("data", 6, 700)])
def test_fig3_deep_chain_keeps_every_trial_and_agrees_with_a_high_precision_reference(attention, depth, digits):
    # At depth 150 t_div is far below float64's old floor (1e-28); mpmath carries enough digits to resolve it.
    cfg = Fig3Config(tokens=4, width=3, depth=depth, trials=3, rng_block=3, chunk=3, beta=2.0, device="cpu",
                     attention=attention)
    res = simulate_fig3(cfg, keep_trials=True, progress=False)
    ref = _mp_reference(cfg, 3, digits)
    assert not res.checks["excluded_values"].get("log_t_div") and not res.checks["excluded_values"].get("r_minus_1")
    got = {m: res.stats.trial_values(m) for m in ref}
    assert got["log_t_div"][:, -1].max() < math.log(1e-40)
    np.testing.assert_allclose(got["log_t_div"][:, 1:], ref["log_t_div"][:, 1:], rtol=1e-9)
    np.testing.assert_allclose(got["xi_ratio_minus_1"][:, 1:], ref["xi_ratio_minus_1"][:, 1:], rtol=1e-9)
    np.testing.assert_allclose(got["delta"][:, 1:], ref["delta"][:, 1:], rtol=1e-9, atol=1e-300)
    r1, r1_ref = got["r_minus_1"][:, 1:], ref["r_minus_1"][:, 1:]
    resolved = np.abs(r1_ref) > 1e-290  # below that r - 1 is a subnormal float
    np.testing.assert_allclose(r1[resolved], r1_ref[resolved], rtol=1e-9)


def test_fig3_deep_causal_chain_agrees_with_a_high_precision_reference_within_its_own_conditioning(monkeypatch):
    # Deep causal chains are ill-conditioned in P: rows nearly one-hot on themselves make the centred part hinge
    # on P's tiny entries, so perturbing every entry of P by 2 ulps (relative) moves ln t_div by up to ~1e-7 after
    # 30 layers (measured). No float64 method can do better than that; the engine must agree with the exact chain
    # to within a small multiple of it, and to 1e-9 where the chain is well-conditioned.
    cfg = Fig3Config(tokens=4, width=3, depth=30, trials=3, rng_block=3, chunk=3, beta=2.0, device="cpu",
                     attention="causal")
    res = simulate_fig3(cfg, keep_trials=True, progress=False)
    got = res.stats.trial_values("log_t_div")[:, 1:]
    ref = _mp_reference(cfg, 3, 120)["log_t_div"][:, 1:]
    rng = np.random.default_rng(1)
    exact_draw = draw_step

    def perturbed(cfg, block, X):
        attention, W = exact_draw(cfg, block, X)
        D = attention["D"]
        noise = torch.from_numpy(rng.standard_normal(D.shape)) * 2 ** -52 * (D + 1 / D.shape[-1]).abs()
        return {**attention, "D": D + noise.tril()}, W  # still causal

    monkeypatch.setattr(sys.modules[__name__], "draw_step", perturbed)
    spread = np.abs(_mp_reference(cfg, 3, 120)["log_t_div"][:, 1:] - ref)  # the chain's own sensitivity
    assert got[:, -1].max() < math.log(1e-16)  # deep: t_div far below where a whole-matrix chain resolves it
    np.testing.assert_array_less(np.abs(got - ref), np.maximum(1e-9 * np.abs(ref), 20 * spread))


@pytest.mark.parametrize("attention", ["softmax", "causal", "dirichlet", "sinkhorn", "banded"])
def test_fig3_means_match_an_independent_per_trial_float64_loop(attention):
    cfg = Fig3Config(tokens=7, width=9, depth=5, trials=40, beta=2.5, rng_block=10, chunk=20, device="cpu",
                     attention=attention, alpha=0.7, window=1)
    res = simulate_fig3(cfg, progress=False)
    ref = _reference_loop(cfg)
    for metric, values in ref.items():
        steps, mean, _, _ = res.series(metric)
        if metric in ("t_sim", "t_div", "log_t_div", "stable_rank", "mean_cosine", "dong_residual"):  # step 0: X_0
            steps, mean = steps[1:], mean[1:]
        assert steps == [1, 2, 3, 4, 5]
        np.testing.assert_allclose(mean, values.mean(0), rtol=1e-9, atol=1e-12, err_msg=metric)


def test_fig3_agrees_with_an_independently_drawn_numpy_run_within_sampling_error():
    # A configuration nobody tuned to: n = 12, d = 20, beta = 2.5, L = 6; different random numbers entirely.
    cfg = Fig3Config(tokens=12, width=20, depth=6, trials=800, beta=2.5, rng_block=200, chunk=800, device="cpu")
    res = simulate_fig3(cfg, progress=False)
    rng = np.random.default_rng(12345)
    n, d, L, Tn = 12, 20, 6, 800
    X = rng.normal(size=(Tn, n, d))
    Q = np.linalg.svd(np.ones((1, n)))[2][1:].T
    for k in range(1, L + 1):
        Z = 2.5 * rng.normal(size=(Tn, n, n))
        P = np.exp(Z - Z.max(-1, keepdims=True))
        P /= P.sum(-1, keepdims=True)
        Y = P @ X @ rng.normal(scale=1 / math.sqrt(d), size=(Tn, d, d))
        t_div = ((Y - Y.mean(1, keepdims=True)) ** 2).sum((1, 2)) / (Y ** 2).sum((1, 2))
        delta = np.abs(np.linalg.eigvals(Q.T @ P @ Q)).max(-1)
        for metric, sample in (("t_div", t_div), ("delta", delta)):
            _, mean, lo, hi = res.series(metric)
            i = [s for s, *_ in zip(*res.series(metric))].index(k)
            se_engine = (hi[i] - lo[i]) / (2 * sps.t.ppf(0.975, Tn - 1))
            se_ref = sample.std(ddof=1) / math.sqrt(Tn)
            z = (mean[i] - sample.mean()) / math.hypot(se_engine, se_ref)
            assert abs(z) < 4.5, (metric, k, z)
        X = Y / np.linalg.norm(Y, axis=(1, 2), keepdims=True) * math.sqrt(n * d)


def test_fig3_data_variant_keeps_every_trial_through_its_superexponential_collapse():
    cfg = Fig3Config(tokens=8, width=8, depth=12, trials=40, rng_block=20, chunk=40, device="cpu", attention="data")
    res = simulate_fig3(cfg, keep_trials=True, progress=False)
    log_t_div = res.stats.trial_values("log_t_div")
    assert np.isfinite(log_t_div).all()  # nothing lost to the floor, no survivor bias
    assert all(c == 40 for c in res.counts("log_t_div")[1])
    assert log_t_div[:, -1].max() < -1e4  # t_div ~ e^-10000: far below any float, still resolved
    # near collapse each step multiplies ln t_div by about three (S ~ E^T A E: the centred part shrinks cubically)
    ratio = log_t_div[:, 8:] / log_t_div[:, 7:-1]
    assert 2.5 < np.median(ratio) < 3.5
    _, mean, _, _ = res.series("t_sim")
    assert mean[-1] == 1.0


def test_fig3_runs_in_float32_and_agrees_with_float64_on_identical_inputs():
    res = simulate_fig3(Fig3Config(**SMALL, dtype="float32"), keep_trials=True, progress=False)
    res64 = simulate_fig3(Fig3Config(**SMALL), keep_trials=True, progress=False)
    # the same float32 draws feed both runs: per trial, delta differs only by float32 rounding of P
    d32, d64 = res.stats.trial_values("delta"), res64.stats.trial_values("delta")
    np.testing.assert_allclose(d32[:, 1:], d64[:, 1:], rtol=1e-6)
    t32, t64 = res.stats.trial_values("t_div"), res64.stats.trial_values("t_div")
    np.testing.assert_allclose(t32, t64, rtol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fig3_on_cuda_agrees_with_cpu_within_sampling_error():
    cpu = simulate_fig3(Fig3Config(**{**SMALL, "trials": 400, "chunk": 400}), progress=False)
    gpu = simulate_fig3(Fig3Config(**{**SMALL, "trials": 400, "chunk": 400, "device": "cuda"}), progress=False)
    assert gpu.device.startswith("cuda")
    for metric in ("t_div", "r", "delta"):
        _, mc, lo, hi = cpu.series(metric)
        _, mg, _, _ = gpu.series(metric)
        assert np.all(np.abs(np.array(mc) - np.array(mg)) < 3 * (np.array(hi) - np.array(lo)) + 1e-12)


def test_a_mean_near_the_float_range_is_finite_in_a_block_and_across_blocks():
    # a block's mean was its sum over n: 100 values of 5e306 overflowed it (fig3 --attention data reaches 9e305)
    from simulations.engine.stats import _summary

    v = np.full((250, 2), 5e306)
    v[:, 1] = 1.0
    st = StreamingStats(2)
    st.update({"m": torch.from_numpy(v[:100])})
    st.update({"m": torch.from_numpy(v[100:])})
    np.testing.assert_allclose(st.mean("m"), [5e306, 1.0], rtol=1e-14)
    got = _summary(torch.from_numpy(v), 0)  # one block of all 250
    np.testing.assert_allclose(got[1], [5e306, 1.0], rtol=1e-14)


@pytest.mark.parametrize("blocks", [
    [np.full(250, 8e306), np.full(250, 1e306)],  # delta n_b overflowed the merge: mean -inf (exact 4.5e306)
    [5e307 + 1e307 * np.random.default_rng(1).standard_normal(250)],  # sqrt(M2) overflowed: half-width inf
    [np.random.default_rng(2).uniform(0, 1.6e308, 250), np.random.default_rng(3).uniform(0, 1.7e308, 250),
     -np.random.default_rng(4).uniform(0, 1.7e308, 17)],  # values from 2^1023 on: 2^1024 was inf in ldexp
])
def test_statistics_of_finite_values_up_to_the_floats_largest_are_finite_and_exact(blocks):
    # fig3 --attention data wrote its xi ratio (~1e306, every value finite) as "1e306, -inf, inf" and, at seed 6,
    # "nan, nan, nan" (a review): the merge and the block summary now work in units of a power of two per step
    from fractions import Fraction

    from scipy import stats

    st = StreamingStats(1)
    for b in blocks:
        st.update({"m": torch.from_numpy(b)[:, None]})
    v = np.concatenate(blocks)
    exact = sum(Fraction(x) for x in v) / len(v)
    var = sum((Fraction(x) - exact) ** 2 for x in v) / (len(v) - 1)
    sd = math.exp((math.log(var.numerator) - math.log(var.denominator)) / 2)
    want = stats.t.ppf(0.975, len(v) - 1) * sd / math.sqrt(len(v))
    assert math.isclose(float(st.mean("m")[0]), float(exact), rel_tol=1e-14)
    assert math.isclose(float(st.ci_halfwidth("m")[0]), want, rel_tol=1e-12)


def test_ldexp_reaches_the_floats_largest_power_of_two():
    # _exp_range took floor(log2(max)) = 1024 (log2 rounds up there): x 2^1024 came out inf for any x
    from theory._similarity import ldexp

    got = ldexp(torch.tensor([0.9, 0.5], dtype=torch.float64), torch.tensor([1024.0, -1074.0], dtype=torch.float64))
    assert got.tolist() == [math.ldexp(0.9, 1024), math.ldexp(0.5, -1074)]


@pytest.mark.parametrize("scale", [1e-250, 1e-174, 1.0, 1e200, 1e300])
def test_confidence_intervals_hold_at_any_scale_and_an_empty_block_does_not_spoil_them(scale):
    # M2 (summed squared deviations) left the float range beyond about 1e+-154: fig3's t_div at depth 90 came out
    # with a zero-width interval (1e-174) and data attention's xi ratio with an infinite one (1e256)
    from scipy import stats

    rng = np.random.default_rng(4)
    v = (1 + rng.random((30, 1))) * scale
    st = StreamingStats(1)
    st.update({"m": torch.from_numpy(v[:10])})
    st.update({"m": torch.full((5, 1), float("nan"), dtype=torch.float64)})  # a block with no defined value
    st.update({"m": torch.from_numpy(v[10:])})
    want = stats.t.ppf(0.975, 29) * (v / scale).std(ddof=1) / math.sqrt(30)  # computed at scale 1
    assert math.isclose(float(st.ci_halfwidth("m")[0]) / scale, want, rel_tol=1e-12)
    assert math.isclose(float(st.mean("m")[0]) / scale, float((v / scale).mean()), rel_tol=1e-14)


@pytest.mark.parametrize("attention, beta", [("softmax", 0.0), ("data", 4.0)])
def test_c6_counts_only_the_steps_where_it_is_defined(attention, beta):
    # NaN < tolerance is False: steps whose odds_slack is undefined (t_div(X) = 0 at beta 0; data attention's
    # overflowed ratios) counted as checked and holding, so beta 0 reported "fails in 0.0%" of 200 unchecked steps
    from simulations.engine.config import Fig3Config
    from simulations.studies.fig3 import simulate_fig3

    cfg = Fig3Config(tokens=6, width=5, depth=7, trials=40, rng_block=10, chunk=20, beta=beta, attention=attention,
                     device="cpu")
    res = simulate_fig3(cfg, keep_trials=True, progress=False)
    slack = res.stats.trial_values("odds_slack")[:, 1:]
    defined = np.isfinite(slack)
    violated = int((slack[defined] < -1e-12).sum())
    c = res.checks
    assert c["C6_steps_checked"] == int(defined.sum()) and c["C6_violations"] == violated
    if defined.any():
        assert c["C6_violation_share"] == pytest.approx(violated / defined.sum(), rel=1e-12)
    else:
        assert math.isnan(c["C6_violation_share"])
    uncertain = res.stats.trial_values("delta_uncertain")[:, 1:]
    assert c["delta_uncertain"]["share"] == pytest.approx(np.nansum(uncertain) / np.isfinite(uncertain).sum(), abs=1e-15)
