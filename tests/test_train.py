"""The digits training replication (simulations/studies/train.py): quick mode end to end, C11 inside a trained model's
de-escalated blocks, the split and the config. Skipped where scikit-learn (the data set) is not installed."""

import argparse
import json
import math

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

import theory as T  # noqa: E402
from simulations.studies import train as train_mod  # noqa: E402
from simulations.engine.checkpoint import Checkpoint  # noqa: E402
from simulations.cli import _add_config_flags, _config, run_figure  # noqa: E402
from simulations.registry import Figure  # noqa: E402
from simulations.studies.train import (DigitViT, TrainConfig, load_split, render_train_findings, simulate_train,  # noqa: E402
                                       train_findings, train_panels, train_title)
from simulations.output.writing import read_csv  # noqa: E402

# quick mode: every variant, a two-value lr search, two seeds, one epoch, a few hundred images (a few seconds)
QUICK = dict(depths=(2,), epochs=1, warmup_epochs=0.5, seeds=2, lrs=(1e-3, 3e-3), samples=300, test_size=100,
             val_size=60, width=16, heads=2, workers=1, device="cpu")
VARIANTS = ("post", "pre", "deesc1", "deesc0.5", "cb", "pre-cb")
FIGURE = Figure("train", TrainConfig, simulate_train, train_panels, train_title)


@pytest.fixture(scope="module")
def quick():
    return simulate_train(TrainConfig(**QUICK), progress=False)


def test_quick_mode_records_loss_accuracy_and_similarity_of_every_variant(quick):
    L, E = 2, 1
    expected = {f"{v}/d{L}/{q}": steps for v in VARIANTS for q, steps in
                (("train_loss", list(range(1, E + 1))), ("t_sim_init", list(range(L + 1))),
                 ("t_sim_trained", list(range(L + 1))), ("test_acc", [0]))}
    expected |= {f"{v}/test_acc_vs_depth": [L] for v in VARIANTS}
    assert set(quick.metrics) == set(expected)
    for metric, steps in expected.items():
        got, mean, lo, hi = quick.series(metric)
        assert got == steps
        assert all(np.isfinite(mean)) and all(a <= m <= b for a, m, b in zip(lo, mean, hi))
    assert {r.count for r in quick.rows} == {2}  # one value per seed
    for v in VARIANTS:
        acc = quick.checks["test_acc"][v]["2"]
        assert 0 <= acc["mean"] <= 1 and len(acc["values"]) == 2 and acc["lr"] in QUICK["lrs"]
        assert set(quick.checks["lr_search_val_acc"][f"{v}/d2"]) == {"0.001", "0.003"}
        sims = quick.series(f"{v}/d2/t_sim_trained")[1]
        assert all(0 <= s <= 1 for s in sims)
    assert quick.checks["test_acc_table"][0].startswith("test accuracy (%)")
    assert len(quick.checks["test_acc_table"]) == 2 + len(VARIANTS)
    assert {m for p in train_panels(quick) for m in p.metrics} <= set(quick.metrics)


def test_default_study_includes_pre_norm_with_context_broadcasting():
    assert TrainConfig().variants == list(VARIANTS)
    assert train_mod.parse_variant("pre-cb") == ("pre-cb", 0.0)
    model = DigitViT(TrainConfig(**QUICK), "pre-cb", 2, seed=0, device=torch.device("cpu"))
    assert all(b.arch == "pre-cb" for b in model.stack.blocks)


def test_findings_pair_each_cb_variant_with_its_baseline_seed_by_seed(quick):
    f = json.loads(json.dumps(train_findings(quick)))  # as stored in docs/findings
    assert set(f["cb_paired"]) == {"pre-cb", "cb"}
    for cb, base in (("pre-cb", "pre"), ("cb", "post")):
        p = f["cb_paired"][cb]
        assert p["baseline"] == base
        want = [a - b for a, b in zip(quick.checks["test_acc"][cb]["2"]["values"],
                                      quick.checks["test_acc"][base]["2"]["values"])]
        assert p["diff"]["2"]["values"] == pytest.approx(want, abs=1e-15)
        assert p["diff"]["2"]["mean"] == pytest.approx(np.mean(want), abs=1e-15)
        assert p["diff"]["2"]["std"] == pytest.approx(np.std(want, ddof=1), abs=1e-15)
    text = render_train_findings(f)
    assert "| pre-cb (pre-norm + CB) |" in text and "pre-cb - pre (test accuracy" in text
    assert "cb - post (test accuracy" in text


def _paired(diffs: dict) -> dict:
    """Findings of two variants whose per-seed accuracy differences per depth are ``diffs``."""
    depths = sorted(int(d) for d in diffs)
    acc = {"mean": 0.9, "std": 0.01, "lr": 1e-3}
    return {"seed": 0, "trials": 3, "depths": depths, "variants": ["pre", "pre-cb"],
            "test_acc": {v: {str(d): acc for d in depths} for v in ("pre", "pre-cb")},
            "t_sim_last_block": {v: {"init": 0.5, "trained": 0.5} for v in ("pre", "pre-cb")},
            "cb_paired": {"pre-cb": {"baseline": "pre", "diff": {
                str(d): {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else math.nan,
                         "values": v}
                for d, v in diffs.items()}}}}


@pytest.mark.parametrize("diffs, says", [
    ({6: [0.01, 0.02, 0.03], 12: [0.01, 0.01, 0.02]}, "pre-norm + CB beats pre-norm at every depth, in every seed"),
    ({6: [0.01, 0.02, 0.03], 12: [-0.01, 0.01, 0.02]},
     "beats pre-norm in every seed only at L = 6, and elsewhere the seeds disagree"),
    ({6: [-0.01, -0.02, -0.03], 12: [-0.01, -0.01, -0.02]}, "pre-norm + CB is below pre-norm at every depth"),
    ({6: [-0.01, 0.02, 0.03], 12: [-0.01, -0.01, -0.02]}, "never beats pre-norm in every seed; it is below it in "
                                                           "every seed at L = 12"),
    ({6: [-0.01, 0.02, 0.0], 12: [0.0, 0.0, 0.0]}, "does not beat pre-norm in every seed at any depth, nor lose"),
    # one seed of three left (two diverged): it was "higher in every seed" and "beats ... in every seed" (a review)
    ({6: [0.05], 12: [0.01, 0.02, 0.03]}, "+5.0 at L = 6 (one seed only: no verdict"),
    ({6: [0.05], 12: [0.01, 0.02, 0.03]}, "beats pre-norm in every seed only at L = 12, and elsewhere too few seeds"),
])
def test_the_cb_verdict_follows_the_signs_of_the_per_seed_differences(diffs, says):
    text = render_train_findings(_paired({str(d): v for d, v in diffs.items()}))
    assert says in text


def test_the_cb_sentence_gives_mean_and_spread_of_the_differences_in_points():
    text = render_train_findings(_paired({"6": [0.01, 0.02, 0.03], "12": [-0.01, 0.0, 0.04]}))
    assert "+2.0 +- 1.0 at L = 6 (higher in every seed); +1.0 +- 2.6 at L = 12 (the seeds disagree)" in text


def test_C11_deescalation_removes_the_mean_token_in_the_model_at_init(quick):
    # tau = 1: the first de-escalated stream has t_sim = 0, so the last block's similarity stays far below
    # plain post-norm's, before any training
    post, deesc = quick.series("post/d2/t_sim_init")[1], quick.series("deesc1/d2/t_sim_init")[1]
    assert deesc[-1] < post[-1]


def test_quick_mode_writes_png_csv_and_json_through_the_cli_path(tmp_path):
    cfg = TrainConfig(**{**QUICK, "archs": "post,deesc1", "seeds": 2, "lrs": (1e-3,)})
    done = run_figure(FIGURE, cfg, str(tmp_path), progress=False)
    for ext in ("png", "csv", "json"):
        assert (tmp_path / f"train.{ext}").stat().st_size > 0
    rows = read_csv(tmp_path / "train.csv")
    assert len(rows) == len(done["result"].rows)
    assert {r["metric"] for r in rows} >= {"post/d2/test_acc", "deesc1/d2/t_sim_trained", "post/d2/train_loss"}
    meta = json.loads((tmp_path / "train.json").read_text())
    assert meta["figure"] == "train" and meta["config"]["depths"] == [2]
    assert meta["checks"]["test_acc_table"][2].startswith("post")
    assert not list(tmp_path.glob(".train.checkpoint*"))  # removed once the results are written


@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_C11_deescalated_block_stream_has_the_predicted_similarity_after_training(tau):
    cfg = TrainConfig(**{**QUICK, "dtype": "float64"})
    split = load_split(cfg)
    X, y = (torch.as_tensor(a) for a in split["train"])
    X = X.double()
    model = DigitViT(cfg, f"deesc{tau:g}", 3, seed=0, device=torch.device("cpu")).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for i in range(0, 96, 32):  # a few real optimiser steps: the weights are no longer at their init
        loss = torch.nn.functional.cross_entropy(model(X[i:i + 32])[0], y[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        _, _, traces = model(X[:64])
    for tr in traces:
        s = T.token_similarity(tr.attn_in + tr.attn_out)  # the stream X + SA(X) before (I - tau Pi)
        predicted = T.deescalated_similarity(s, torch.tensor(tau, dtype=torch.float64))
        measured = T.token_similarity(tr.resid)  # after (I - tau Pi), before LayerNorm
        assert torch.allclose(measured, predicted, rtol=1e-9, atol=1e-15)
        assert bool((measured < s).all())  # tau in (0, 2) lowers similarity


def test_split_is_fixed_stratified_and_keeps_the_test_images_out_of_the_search():
    cfg = TrainConfig()
    a, b = load_split(cfg), load_split(cfg)
    assert {k: len(v[1]) for k, v in a.items()} == {"train": 1297, "test": 500, "fit": 1000, "val": 297}
    assert all(np.array_equal(a[k][0], b[k][0]) for k in a)  # the same split every time
    assert np.bincount(a["test"][1]).min() >= 48  # stratified: ~50 of each digit
    train_rows = {x.tobytes() for x in a["train"][0]}
    assert len(train_rows & {x.tobytes() for x in a["test"][0]}) <= 1  # (sklearn's digits hold a few duplicates)
    assert a["train"][0].dtype == np.float32 and abs(float(a["train"][0].mean())) < 1e-6


def test_every_variant_starts_from_the_same_weights_for_one_seed():
    cfg = TrainConfig(**QUICK)
    models = [DigitViT(cfg, v, 2, seed=3, device=torch.device("cpu")) for v in VARIANTS]
    for m in models[1:]:
        for p, q in zip(models[0].parameters(), m.parameters()):
            assert torch.equal(p, q)


def test_a_resumed_run_trains_nothing_again_and_gives_the_same_rows(tmp_path, monkeypatch):
    cfg = TrainConfig(**{**QUICK, "archs": "pre,cb", "lrs": (1e-3,)})
    ck = Checkpoint.for_run(tmp_path, "train", cfg.to_dict())
    first = simulate_train(cfg, progress=False, checkpoint=ck)
    assert ck.path.is_file()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(train_mod, "train_run", no_training)
    again = simulate_train(cfg, progress=False, checkpoint=ck)
    assert again.rows == first.rows


def test_cli_flags_become_a_valid_config():
    parser = argparse.ArgumentParser()
    _add_config_flags(parser, TrainConfig, defaults=True)
    args = parser.parse_args(["--depths", "12", "6", "--lrs", "1e-3", "--archs", "post,deesc0.25", "--epochs", "2"])
    cfg = _config(FIGURE, args)
    assert cfg.depths == (6, 12) and cfg.lrs == (1e-3,) and cfg.variants == ["post", "deesc0.25"]
    assert train_mod.parse_variant("deesc0.25") == ("deescalated", 0.25)
    assert cfg.trials == cfg.seeds and cfg.tokens == 17


@pytest.mark.parametrize("kw, message", [
    (dict(depths=(2.5,)), "depths must be integers"),
    (dict(depths=()), "depths must be integers"),
    (dict(lrs=(0.0,)), "lrs must be positive"),
    (dict(archs="post,deep"), "archs must be a comma-separated list"),
    (dict(archs="deescx"), "archs must be a comma-separated list"),
    (dict(width=30, heads=4), "width must be divisible by heads"),
    (dict(patch=3), "patch must be 1, 2 or 4"),
    (dict(pool="max"), "pool must be cls or mean"),
    (dict(seeds=0), "seeds must be an integer >= 1"),
    (dict(samples=100), "need test_size \\+ val_size \\+ 20 <= samples"),
    (dict(warmup_epochs=20.0), "warmup_epochs must be in"),
    (dict(device="tpu"), "device must be one of"),
])
def test_bad_train_config_is_refused_with_what_was_expected(kw, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kw)


def test_mean_pooling_and_4x4_patches_also_run():
    cfg = TrainConfig(**{**QUICK, "archs": "post", "pool": "mean", "patch": 4, "lrs": (1e-3,), "seeds": 1})
    res = simulate_train(cfg, progress=False)
    assert res.series("post/d2/t_sim_init")[0] == [0, 1, 2]
    assert math.isnan(res.checks["test_acc"]["post"]["2"]["std"])  # one seed: no spread, not an invented one


def test_a_diverging_run_is_recorded_as_diverged_in_every_variant():
    # cb and de-escalated blocks called theory's checked operators in their forward pass: a diverging run's NaN
    # activations raised ValueError out of the study (the CLI reported it as a bad flag) where post was recorded
    from simulations.studies.train import TrainConfig, train_run

    cfg = TrainConfig(archs="post,deesc1,cb", depths=(2,), seeds=1, epochs=2, clip=0.0, workers=1, lrs=(1e3,))
    for variant in ("post", "cb", "deesc1"):
        run = train_run(cfg, variant, 2, 0, 1e3, "search")
        assert run["diverged"], variant
        # and it is not scored: argmax over NaN logits "predicted" class 0, a chance-looking ~10%
        assert math.isnan(run["acc"]), variant


def test_a_study_whose_every_run_diverges_reports_no_accuracy_rather_than_chance():
    cfg = TrainConfig(**{**QUICK, "archs": "post", "lrs": (1e3,), "clip": 0.0, "epochs": 2})
    res = simulate_train(cfg, progress=False)
    a = res.checks["test_acc"]["post"]["2"]
    assert math.isnan(a["mean"]) and all(math.isnan(x) for x in a["values"])
    assert (a["runs"], a["diverged"]) == (2, 2) and len(res.checks["diverged_runs"]) == 2
    assert "post/test_acc_vs_depth" not in res.metrics and "post/d2/test_acc" not in res.metrics
    assert res.checks["excluded_values"]["post/d2/test_acc"] == 2
    assert "all 2 diverged" in res.checks["test_acc_table"][2]
    assert np.isfinite(res.series("post/d2/t_sim_init")[1]).all()  # the initial weights are still measured
    assert "post/d2/t_sim_trained" not in res.metrics  # nothing trained to measure
    f = train_findings(res)
    assert f["diverged_runs"] == 2
    text = render_train_findings(json.loads(json.dumps(f)))
    assert "| post | all 2 diverged (1e+03) |" in text and "**" not in text
    assert "2 final runs diverged" in text and "post 0." in text and "-> diverged." in text


def test_the_figure_of_a_study_whose_runs_all_diverged_names_them_instead_of_failing(tmp_path):
    cfg = TrainConfig(**{**QUICK, "archs": "post,pre", "lrs": (1e3,), "clip": 0.0, "epochs": 2, "seeds": 1})
    done = run_figure(FIGURE, cfg, str(tmp_path), progress=False)
    assert (tmp_path / "train.png").stat().st_size > 0
    assert done["result"].all_left_out("post/test_acc_vs_depth")


def _fake_runs(acc: dict):
    """A stand-in for ``train_run``: accuracy ``acc[(variant, seed)]`` (None: the run diverged)."""
    def run(cfg, variant, depth, seed, lr, phase, progress=False):
        a = 0.5 if phase == "search" else acc[(variant, seed)]
        return {"variant": variant, "depth": depth, "seed": seed, "lr": lr, "phase": phase,
                "train_loss": [1.0] * cfg.epochs, "diverged": a is None, "acc": 0.1 if a is None else a,
                "t_sim_init": [0.5] * (depth + 1), "t_sim_trained": [0.4] * (depth + 1)}
    return run


def test_a_diverged_run_is_left_out_of_mean_std_bold_and_paired_differences(monkeypatch):
    # a diverged record from before diverged runs went unscored still carries acc 0.1: it must not count
    acc = {("post", 0): 0.80, ("post", 1): 0.90, ("post", 2): 0.85,
           ("cb", 0): 0.95, ("cb", 1): None, ("cb", 2): 0.97}
    monkeypatch.setattr(train_mod, "train_run", _fake_runs(acc))
    cfg = TrainConfig(**{**QUICK, "archs": "post,cb", "seeds": 3, "lrs": (1e-3,)})
    res = simulate_train(cfg, progress=False)
    cb = res.checks["test_acc"]["cb"]["2"]
    assert cb["mean"] == pytest.approx(0.96) and cb["std"] == pytest.approx(np.std([0.95, 0.97], ddof=1))
    assert (cb["runs"], cb["diverged"]) == (3, 1) and math.isnan(cb["values"][1])
    row = next(r for r in res.rows if r.metric == "cb/d2/test_acc")
    assert row.count == 2 and row.mean == pytest.approx(0.96)
    assert res.checks["diverged_runs"] == ["final/cb/d2/seed1/lr0.001"]
    assert "96.0 +- 1.4, 1 of 3 diverged" in res.checks["test_acc_table"][3]
    f = json.loads(json.dumps(train_findings(res)))
    d = f["cb_paired"]["cb"]["diff"]["2"]
    assert d["values"] == pytest.approx([0.15, 0.12]) and d["seeds_dropped"] == 1
    text = render_train_findings(f)
    assert "| post | **85.0 +- 5.0** (1e-3) |" in text  # cb's higher mean survived a divergence: not the best
    assert "| cb (post-norm + CB) | 96.0 +- 1.4, 1 of 3 diverged (1e-3) |" in text
    assert "+13.5 +- 2.1 at L = 2 (higher in every seed; 1 seed left out, a run diverged)" in text
    assert "1 final run diverged" in text


def test_the_search_never_picks_a_rate_that_diverged(monkeypatch):
    def run(cfg, variant, depth, seed, lr, phase, progress=False):
        bad = phase == "search" and lr == 1e-3
        return {"variant": variant, "depth": depth, "seed": seed, "lr": lr, "phase": phase, "diverged": bad,
                "train_loss": [1.0], "acc": 0.1 if bad else 0.05, "t_sim_init": [0.5] * 3, "t_sim_trained": [0.4] * 3}
    monkeypatch.setattr(train_mod, "train_run", run)
    res = simulate_train(TrainConfig(**{**QUICK, "archs": "post", "lrs": (1e-3, 3e-3)}), progress=False)
    assert res.checks["test_acc"]["post"]["2"]["lr"] == 3e-3


def test_one_seed_renders_without_an_invented_spread():
    f = _paired({"6": [0.01]})
    f["trials"] = 1
    f["test_acc"] = {v: {"6": {"mean": 0.9, "std": math.nan, "lr": 1e-3}} for v in ("pre", "pre-cb")}
    text = render_train_findings(f)
    assert "nan" not in text.lower()
    assert "one run each over 1 seed" in text and "| pre | **90.0** (1e-3) |" in text
