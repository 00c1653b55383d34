"""``python -m simulations``: outputs, step convention on disk, and one-line errors that write nothing."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulations.cli import main
from simulations.output.writing import CSV_COLUMNS, read_csv

ROOT = Path(__file__).resolve().parents[1]
TINY3 = ["--tokens", "5", "--width", "4", "--depth", "3", "--trials", "20", "--rng-block", "10", "--chunk", "20",
         "--device", "cpu", "--no-progress"]


def test_fig3_writes_png_csv_and_json(tmp_path):
    assert main(["fig3", *TINY3, "--seed", "3", "--out", str(tmp_path)]) == 0
    rows = read_csv(tmp_path / "fig3.csv")
    header = (tmp_path / "fig3.csv").read_text().splitlines()[0]
    assert header == ",".join(CSV_COLUMNS)
    assert {r["metric"] for r in rows if r["step"] == 0} == {"t_sim", "t_div", "log_t_div", "stable_rank",
                                                             "mean_cosine", "dong_residual", "stable_rank_minus_1",
                                                             "log_stable_rank_minus_1", "one_minus_mean_cosine",
                                                             "log_one_minus_mean_cosine"}
    assert max(r["step"] for r in rows) == 3 and all(r["count"] == 20 for r in rows)
    meta = json.loads((tmp_path / "fig3.json").read_text())
    assert meta["seed"] == 3 and meta["config"]["trials"] == 20 and meta["device"] == "cpu"
    assert {"torch", "numpy", "python"} <= set(meta["versions"]) and meta["elapsed_s"] > 0
    assert (tmp_path / "fig3.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_gives_identical_csv_and_chunk_size_does_not_matter(tmp_path):
    main(["fig3", *TINY3, "--out", str(tmp_path / "a")])
    main(["fig3", *TINY3, "--chunk", "10", "--out", str(tmp_path / "b")])
    assert (tmp_path / "a" / "fig3.csv").read_bytes() == (tmp_path / "b" / "fig3.csv").read_bytes()


BAD = [
    (["fig3", "--trials", "0"], "trials must be an integer >= 1"),
    (["fig3", "--trials", "-5"], "trials must be an integer >= 1"),
    (["fig3", "--tokens", "1"], "tokens must be an integer >= 2"),
    (["fig3", "--chunk", "300", "--device", "cpu"], "chunk must be a multiple of rng_block"),  # one block on CUDA
    (["fig3", "--beta", "nan"], "beta must be a finite number"),
    (["fig3", "--device", "tpu"], "invalid choice: 'tpu'"),
    (["fig3", "--attention", "banana"], "invalid choice: 'banana'"),
    (["fig3", "--trials", "many"], "invalid int value"),
    (["fig3", "--seed", "-1"], "seed must be an integer >= 0"),
    (["fig3", "--seed", str(2 ** 64)], "seed must be an integer below 2**64"),  # was an overflow at run time
    (["fig3", "--rng-block", "0"], "rng_block must be an integer >= 1"),
    (["fig3", "--width", "0"], "width must be an integer >= 1"),
    # LayerNorm over one feature is 0: fig1/2/5 failed after their work, fig4 on a log axis with a checkpoint left
    (["fig4", "--width", "1", "--heads", "1"], "width must be >= 2 for the Transformer figures"),
    (["fig1", "--width", "1", "--heads", "1"], "width must be >= 2 for the Transformer figures"),
    (["fig3", "--depth", "0"], "depth must be an integer >= 1"),
    (["fig3", "--beta", "-1"], "beta must be a finite number >= 0"),
    (["fig3", "--dtype", "float16"], "invalid choice: 'float16'"),
    (["fig2", "--tau", "nan"], "tau must be a finite number"),
    (["fig2", "--tau", "inf"], "tau must be a finite number"),
    (["fig2", "--heads", "3"], "width must be divisible by heads"),
    (["fig2", "--arch", "postnorm"], "invalid choice: 'postnorm'"),
    (["fig5", "--taus", "0.5", "nan"], "taus must be finite numbers"),
    (["fig9"], "invalid choice: 'fig9'"),
    (["train", "--archs", "post,post"], "without empty or repeated names"),  # ran post twice (a review)
    (["train", "--archs", "post,"], "without empty or repeated names"),
    (["all", "--trials", "0"], "trials must be an integer >= 1"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_flags_fail_with_one_line_and_write_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    try:
        code = main([*argv, "--out", str(out)])
    except SystemExit as exc:  # argparse's own rejections (types, choices)
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_a_bad_flag_in_a_real_process_exits_2_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "simulations", "fig3", "--trials", "0", "--out", str(tmp_path / "o")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "python -m simulations: error: trials must be an integer >= 1; got 0\n"
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("below", ["", "sub"], ids=["the file", "under the file"])
def test_an_out_path_that_is_or_lies_under_a_file_is_refused_before_any_work(tmp_path, capsys, below):
    f = tmp_path / "file.txt"
    f.write_text("keep me")
    assert main(["fig3", *TINY3, "--out", str(f / below if below else f)]) == 2
    assert f.read_text() == "keep me"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("is a file" in err or "not writable" in err)


@pytest.mark.parametrize("command", [["fig3", *TINY3], ["sweep", "fig3", "--beta", "1,2", "--trials", "4"]],
                         ids=["fig3", "sweep"])
def test_an_out_the_file_system_refuses_is_refused_before_any_work(tmp_path, capsys, monkeypatch, command):
    # the permission bits let it pass (root may write anywhere, /proc's bits say writable): the run computed, then
    # its checkpoint raised a 35-line traceback and exit 1
    from simulations.engine import checkpoint

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", refuse)  # what a read-only mount answers, whoever asks
    ran = []
    monkeypatch.setattr(checkpoint.Checkpoint, "for_run", lambda *a, **k: ran.append(1))
    assert main([*command, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be written: Permission denied" in err
    assert not ran and not (tmp_path / "out").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="Linux's /proc")
def test_an_out_under_proc_is_refused_in_one_line(capsys):
    assert main(["fig3", *TINY3, "--out", "/proc/tse-no-such-dir"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be written" in err


def test_sweep_and_all_have_help_that_tells_the_truth(capsys):
    assert main(["sweep", "--help"]) == 0 and main(["sweep", "-h"]) == 0
    out = capsys.readouterr().out
    assert "usage: python -m simulations sweep {fig2,fig3,fig5}" in out
    with pytest.raises(SystemExit) as exc:
        main(["all", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    # all leaves an unset flag at each figure's own default (fig2: 64 tokens, 50 trials), not at one shared value
    assert "number of tokens n (default each figure's own)" in text and "(default 32)" not in text


def test_an_unknown_metric_is_rejected_by_name():
    from simulations import Fig3Config, simulate_fig3

    res = simulate_fig3(Fig3Config(tokens=4, width=3, depth=1, trials=3, device="cpu"), progress=False)
    with pytest.raises(ValueError, match="unknown metric 'tsim'.*t_sim"):
        res.series("tsim")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_an_error(tmp_path, capsys):
    assert main(["fig3", *TINY3, "--device", "cuda", "--out", str(tmp_path / "o")]) == 2
    assert "no CUDA GPU is available" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("flags,expected", [
    ([], (20000, 100000)),  # the GPU's own batches
    (["--rng-block", "5000"], (5000, 100000)),
    (["--rng-block", "30000"], (30000, 120000)),  # the chunk rounded up to a multiple of the block
    (["--chunk", "250"], (250, 250)),  # a small chunk alone is one block
    (["--chunk", "60000", "--rng-block", "20000"], (20000, 60000)),
    (["--device", "cpu"], (250, 1000)),  # the CPU's defaults, untouched
])
def test_fig3_takes_large_batches_on_cuda_unless_told(monkeypatch, flags, expected):
    import torch

    from simulations import cli

    monkeypatch.setattr(cli, "resolve_device", lambda name: torch.device("cpu" if name == "cpu" else "cuda"))
    args = cli.build_parser().parse_args(["fig3", "--device", "cuda", *flags])
    cfg = cli._config(cli.FIGURES["fig3"], args)
    assert (cfg.rng_block, cfg.chunk) == expected


def test_a_large_chunk_that_is_no_multiple_of_the_gpu_block_is_refused(monkeypatch):
    import torch

    from simulations import cli

    monkeypatch.setattr(cli, "resolve_device", lambda name: torch.device("cuda"))
    args = cli.build_parser().parse_args(["fig3", "--device", "cuda", "--chunk", "30000"])
    with pytest.raises(ValueError, match="multiple of rng_block = 20000"):
        cli._config(cli.FIGURES["fig3"], args)


@pytest.mark.parametrize("flags,message", [
    (["--rng-block", "0"], "rng_block must be an integer >= 1"),
    (["--chunk", "0"], "chunk must be an integer >= 1"),
    (["--chunk", "-3"], "chunk must be an integer >= 1"),
    (["--rng-block", "-1", "--chunk", "5"], "rng_block must be an integer >= 1"),
])
def test_bad_batches_on_cuda_are_refused_by_name_not_by_a_crash(monkeypatch, flags, message):
    # found on an H100, where --device auto is CUDA: --rng-block 0 reached the GPU's batch rule and divided by 0
    import torch

    from simulations import cli

    monkeypatch.setattr(cli, "resolve_device", lambda name: torch.device("cuda"))
    args = cli.build_parser().parse_args(["fig3", "--device", "cuda", *flags])
    with pytest.raises(ValueError, match=message):
        cli._config(cli.FIGURES["fig3"], args)


def test_all_writes_every_figure_with_shared_overrides(tmp_path, capsys):
    tiny = ["--tokens", "4", "--width", "8", "--depth", "2", "--trials", "2", "--device", "cpu", "--no-progress"]
    assert main(["all", *tiny, "--out", str(tmp_path)]) == 0
    for name in ("fig1", "fig2", "fig3", "fig4", "fig5"):
        rows = read_csv(tmp_path / f"{name}.csv")
        assert rows and max(r["step"] for r in rows) == 2 and all(r["count"] == 2 for r in rows)
        assert (tmp_path / f"{name}.png").exists() and (tmp_path / f"{name}.json").exists()
    assert "C2 identity" in capsys.readouterr().out
    # run again (as after an interruption): every figure written by this code and config is skipped, not rerun
    before = {n: (tmp_path / f"{n}.json").stat().st_mtime_ns for n in ("fig1", "fig2", "fig3", "fig4", "fig5")}
    assert main(["all", *tiny, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("by this code with this config; skipped") == 5
    assert before == {n: (tmp_path / f"{n}.json").stat().st_mtime_ns for n in before}
    # a figure whose JSON is gone runs again, the rest are still skipped
    (tmp_path / "fig4.json").unlink()
    assert main(["all", *tiny, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("skipped") == 4 and "fig4: 2 trials" in out
    from simulations import cli  # another config (seed) is not taken for the one written
    from simulations.engine.config import Fig3Config

    same = dict(tokens=4, width=8, depth=2, trials=2, device="cpu")
    assert cli._written_by_this(cli.FIGURES["fig3"], Fig3Config(**same), str(tmp_path))
    assert not cli._written_by_this(cli.FIGURES["fig3"], Fig3Config(**same, seed=1), str(tmp_path))
    (tmp_path / "fig3.csv").write_bytes(b"")  # an emptied CSV is not a written figure (a review)
    assert not cli._written_by_this(cli.FIGURES["fig3"], Fig3Config(**same), str(tmp_path))


def test_a_config_error_in_all_names_its_figure(tmp_path, capsys):
    # all --width 30 said "width must be divisible by heads" without saying whose heads
    assert main(["all", "--width", "30", "--out", str(tmp_path / "out")]) == 2
    assert "error: fig1: width must be divisible by heads" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("attention", ["softmax", "sinkhorn"])
def test_fig3_at_beta_zero_writes_its_results_with_the_undefined_metrics_noted(tmp_path, attention):
    # uniform attention: the tokens are equal after one layer, delta = 0 and the xi ratios undefined in every
    # trial, so those metrics have no rows; plotting asked for them by name and failed, leaving a checkpoint
    tiny = ["fig3", "--beta", "0", "--attention", attention, "--trials", "4", "--depth", "2", "--tokens", "4",
            "--width", "4", "--device", "cpu", "--no-progress"]
    assert main([*tiny, "--out", str(tmp_path)]) == 0
    rows = read_csv(tmp_path / "fig3.csv")
    assert not any(r["metric"] == "xi_ratio_minus_1" for r in rows)
    meta = json.loads((tmp_path / "fig3.json").read_text())
    assert meta["checks"]["excluded_values"]["xi_ratio_minus_1"] == 8 and "findings" in meta
    assert (tmp_path / "fig3.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*"))  # no checkpoint, no temporary file


@pytest.mark.parametrize("cut", ["csv", "png", "json"])
def test_a_signal_while_the_results_are_written_leaves_the_previous_result_whole(tmp_path, monkeypatch, capsys, cut):
    # CSV, PNG and JSON used to be renamed into place each as soon as written: a SIGTERM while the JSON was
    # written left the new run's CSV and PNG beside the previous run's JSON
    from simulations.cli import Interrupted
    from simulations.engine import files

    assert main(["fig3", *TINY3, "--seed", "1", "--out", str(tmp_path)]) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.glob("fig3.*")}
    write_temp = files._write_temp

    def interrupted(path, data):
        if path.suffix == "." + cut:
            raise Interrupted(15)  # SIGTERM arriving while this file's temporary copy is written
        return write_temp(path, data)

    monkeypatch.setattr(files, "_write_temp", interrupted)
    assert main(["fig3", *TINY3, "--seed", "2", "--out", str(tmp_path)]) == 128 + 15
    err = capsys.readouterr().err
    assert "run the same command to continue" in err
    assert {p.name: p.read_bytes() for p in tmp_path.glob("fig3.*")} == before
    (checkpoint,) = tmp_path.glob(".fig3.checkpoint.*.npz")
    assert not list(tmp_path.glob(".*.tmp")) and f"saved in {checkpoint}:" in err


def test_results_are_renamed_into_place_after_every_file_is_written_and_the_json_last(tmp_path, monkeypatch):
    from simulations.engine import files

    steps = []
    write_temp, replace = files._write_temp, files.os.replace
    monkeypatch.setattr(files, "_write_temp", lambda path, data: steps.append(("write", path.suffix))
                        or write_temp(path, data))
    monkeypatch.setattr(files.os, "replace", lambda src, dst: steps.append(("rename", Path(dst).suffix))
                        or replace(src, dst))
    assert main(["fig3", *TINY3, "--out", str(tmp_path)]) == 0
    results = [s for s in steps if s[1] in (".csv", ".png", ".json")]
    assert results == [("write", ".csv"), ("write", ".png"), ("write", ".json"),
                       ("rename", ".csv"), ("rename", ".png"), ("rename", ".json")]


def test_writing_results_never_touches_the_process_umask(tmp_path, monkeypatch):
    # reading the umask sets it (os.umask): done at every write it opened an instant where worker threads would
    # create files with mode 0666
    import os

    from simulations.engine import files

    calls = []
    monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or 0o022)
    files.atomic_write(tmp_path / "x.txt", b"x")
    assert calls == [] and (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o666 & ~files._UMASK


@pytest.mark.parametrize("command", [["fig3", *TINY3], ["sweep", "fig3", "--beta", "1,2", "--trials", "4"]],
                         ids=["fig3", "sweep"])
def test_an_empty_out_is_refused_in_one_line_and_nothing_is_written(tmp_path, capsys, monkeypatch, command):
    # Path("") is ".": --out "" wrote the results into whatever directory the command was started from
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--out", ""]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out must name a directory; got an empty path" in err
    assert not list(tmp_path.iterdir())


def test_an_interrupt_before_any_chunk_finished_says_nothing_was_saved(tmp_path, capsys, monkeypatch):
    # the message said "finished chunks are saved in DIR/.fig3.checkpoint.npz" when no chunk had finished and no
    # such file existed
    from simulations.cli import Interrupted
    from simulations.engine.checkpoint import Checkpoint

    def interrupted(self, *args, **kwargs):
        raise Interrupted(2)  # Ctrl-C as the first chunk is about to be saved

    monkeypatch.setattr(Checkpoint, "save", interrupted)
    assert main(["fig3", *TINY3, "--out", str(tmp_path)]) == 128 + 2
    err = capsys.readouterr().err
    assert err == "python -m simulations fig3: interrupted (SIGINT); no chunk had finished, so nothing was saved\n"
    assert not list(tmp_path.iterdir())


def test_an_interrupt_after_a_chunk_names_the_checkpoint_that_holds_it(tmp_path, capsys, monkeypatch):
    from simulations.cli import Interrupted
    from simulations.engine.checkpoint import Checkpoint

    save = Checkpoint.save

    def save_then_stop(self, *args, **kwargs):
        save(self, *args, **kwargs)
        raise Interrupted(15)

    monkeypatch.setattr(Checkpoint, "save", save_then_stop)
    assert main(["fig3", *TINY3, "--chunk", "10", "--out", str(tmp_path)]) == 128 + 15
    (checkpoint,) = tmp_path.glob(".fig3.checkpoint.*.npz")
    assert capsys.readouterr().err == (f"python -m simulations fig3: interrupted (SIGTERM); finished chunks are saved "
                                       f"in {checkpoint}: run the same command to continue\n")


def test_a_run_with_rng_block_is_quoted_as_a_command_that_reproduces_it(tmp_path, capsys):
    # chunk is left out of the quoted command, which then met the default chunk 1000: "chunk must be a multiple of
    # rng_block = 15" for fig3 --rng-block 15 --chunk 30
    from simulations.readme import provenance

    tiny = ["--tokens", "5", "--width", "4", "--depth", "3", "--trials", "30", "--device", "cpu", "--no-progress"]
    assert main(["fig3", *tiny, "--rng-block", "15", "--chunk", "30", "--out", str(tmp_path / "a")]) == 0
    quoted = provenance("fig3", json.loads((tmp_path / "a" / "fig3.json").read_text())["config"])
    assert quoted == "--tokens 5 --width 4 --depth 3 --trials 30 --rng-block 15"
    assert f"python -m simulations fig3 {quoted}`" in " ".join(capsys.readouterr().out.split())  # as printed
    assert main(["fig3", *quoted.split(), "--device", "cpu", "--no-progress", "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "fig3.csv").read_bytes() == (tmp_path / "a" / "fig3.csv").read_bytes()


@pytest.mark.parametrize("figure, flags, expected", [
    ("fig3", ["--rng-block", "15"], (15, 1005)),  # the default 1000 rounded up to a multiple of the block
    ("fig3", ["--rng-block", "2000"], (2000, 2000)),
    ("fig3", ["--rng-block", "10"], (10, 1000)),  # a block that divides the default keeps it
    ("fig3", ["--rng-block", "15", "--chunk", "45"], (15, 45)),  # a given chunk is kept
    ("fig2", ["--rng-block", "3"], (3, 12)),  # fig2's default chunk is 10
])
def test_a_given_rng_block_without_chunk_takes_a_chunk_that_is_a_multiple_of_it(figure, flags, expected):
    from simulations import cli

    cfg = cli._config(cli.FIGURES[figure], cli.build_parser().parse_args([figure, "--device", "cpu", *flags]))
    assert (cfg.rng_block, cfg.chunk) == expected


def test_a_given_chunk_that_is_no_multiple_of_a_given_block_is_still_refused(tmp_path, capsys):
    assert main(["fig3", "--rng-block", "15", "--chunk", "40", "--device", "cpu", "--out", str(tmp_path / "o")]) == 2
    assert "chunk must be a multiple of rng_block = 15; got chunk = 40" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_sweep_with_rng_block_alone_takes_a_chunk_that_is_a_multiple_of_it(tmp_path):
    out = tmp_path / "sw"
    assert main(["sweep", "fig3", "--beta", "1,2", "--tokens", "5", "--width", "4", "--depth", "2", "--trials", "6",
                 "--rng-block", "3", "--device", "cpu", "--no-progress", "--out", str(out)]) == 0
    assert {r["config"]["chunk"] for r in json.loads((out / "sweep.json").read_text())["results"]} == {1002}


def test_the_chunk_help_says_when_the_chunk_changes_the_random_numbers(monkeypatch, capsys):
    # the help said results never depend on --chunk, but on CUDA a --chunk below fig3's CUDA block is the block
    import torch

    from simulations import cli

    for figure in ("fig3", "all"):
        with pytest.raises(SystemExit):
            main([figure, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert ("results do not depend on it, except on CUDA without --rng-block, where a --chunk below the CUDA "
                "block (fig3: 20000) is also taken as --rng-block, which changes the random numbers") in text
    # what the help says is what happens
    monkeypatch.setattr(cli, "resolve_device", lambda name: torch.device("cuda"))
    cfg = cli._config(cli.FIGURES["fig3"], cli.build_parser().parse_args(["fig3", "--chunk", "19999"]))
    assert cfg.rng_block == 19999 == cli.FIGURES["fig3"].config.cuda_batches["rng_block"] - 1
    # a sweep keeps its batches on CUDA, and its help says so
    assert main(["sweep", "fig3", "--help"]) == 0
    assert "results do not depend on it; a sweep uses the same batches on CUDA as on the CPU" in " ".join(
        capsys.readouterr().out.split())


def test_after_an_interrupt_further_signals_are_ignored_until_main_puts_the_handlers_back(tmp_path, monkeypatch):
    # a second Ctrl-C while the first unwound aborted the process (rc 134) in 1 of 4 tries
    import os
    import signal

    from simulations import cli

    before = signal.getsignal(signal.SIGINT)
    seen = {}

    def interrupted_run(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # the run's handler raises Interrupted here
        raise AssertionError("not interrupted")

    def unwinding(*args, **kwargs):
        try:
            interrupted_run()
        finally:
            seen["handlers"] = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
            os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C while unwinding: ignored

    monkeypatch.setattr(cli, "run_figure", unwinding)
    rc = cli.main(["fig3", "--trials", "2", "--depth", "2", "--device", "cpu", "--no-progress", "--out",
                   str(tmp_path / "out")])
    assert rc == 128 + signal.SIGINT
    assert set(seen["handlers"].values()) == {signal.SIG_IGN}
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler is back


def test_in_its_own_process_a_second_signal_stops_the_run_at_once(monkeypatch, capsys):
    # the first Ctrl-C waits for the blocks in progress, which cannot be cancelled (minutes for a large n: a user
    # had to SIGKILL it, the second Ctrl-C being ignored); where the process is the command's own, a second one
    # now ends it at once (every file is written atomically, so the finished chunks stay saved)
    import signal

    from simulations import cli

    exits = []
    monkeypatch.setattr(cli.os, "_exit", exits.append)
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        monkeypatch.setattr(cli, "_SECOND_SIGNAL_EXITS", True)
        with pytest.raises(cli.Interrupted):
            cli._raise_interrupted(signal.SIGINT, None)
        assert "again to stop at once" in capsys.readouterr().err
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)  # the second signal, SIGTERM this time
        assert exits == [128 + signal.SIGTERM] and "stopped at once" in capsys.readouterr().err
        monkeypatch.setattr(cli, "_SECOND_SIGNAL_EXITS", False)  # in a caller's process: ignored, as before
        with pytest.raises(cli.Interrupted):
            cli._raise_interrupted(signal.SIGINT, None)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        assert "again" not in capsys.readouterr().err
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    source = (ROOT / "simulations" / "__main__.py").read_text()
    assert "main(own_process=True)" in source  # python -m simulations is the command's own process


def test_a_default_shown_in_the_help_is_not_the_flags_value():
    # real's --text default is "" (the bundled corpus, found from the package); showing the corpus's path in the
    # help once made that relative path the flag's value, and the run's record name "real.text=corpus.txt"
    from simulations import cli

    args = cli.build_parser().parse_args(["real"])
    assert args.text == "" and "corpus.txt" in cli.build_parser()._subparsers._group_actions[0].choices[
        "real"].format_help()


def test_an_ensemble_parameter_the_ensemble_does_not_use_is_accepted_with_a_warning(tmp_path, capsys):
    # --attention dirichlet --beta 2 ran silently: beta changes nothing there
    small = ["--trials", "2", "--depth", "2", "--tokens", "4", "--width", "4", "--device", "cpu", "--no-progress"]
    assert main(["fig3", "--attention", "dirichlet", "--beta", "2", *small, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "warning: --beta changes nothing: it is not used by dirichlet attention (it draws with --alpha)" in err
    assert main(["fig3", "--attention", "banded", "--beta", "2", "--window", "1", *small,
                 "--out", str(tmp_path / "b")]) == 0
    assert "warning" not in capsys.readouterr().err  # banded draws with both


def test_a_de_escalation_flag_without_the_de_escalated_arch_is_accepted_with_a_warning(tmp_path, capsys):
    # fig2 --tau 0.3 (arch post) wrote a CSV byte-identical to the default run's without a word (a review)
    small = ["--trials", "1", "--depth", "2", "--tokens", "4", "--width", "8", "--heads", "2", "--device", "cpu",
             "--no-progress"]
    assert main(["fig2", "--tau", "0.3", "--deescalate-at", "output", *small, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "warning: --tau changes nothing: only --arch deescalated uses it (this run's is post)" in err
    assert "warning: --deescalate-at changes nothing" in err
    assert main(["fig2", "--arch", "deescalated", "--tau", "0.3", *small, "--out", str(tmp_path / "b")]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_run_too_large_for_memory_is_refused_in_one_line_before_any_work(tmp_path, capsys, monkeypatch):
    # fig3 --tokens 3000 ended in an allocation's traceback (rc 1) where the same sweep answered in one line (a review)
    from simulations.engine import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 1e6)
    out = tmp_path / "big"
    assert main(["fig3", "--device", "cpu", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "error: fig3 at these sizes is too large for memory: needs about" in err and err.count("\n") == 1
    assert not out.exists()


def test_a_reader_that_closes_the_pipe_early_gets_no_traceback(tmp_path):
    # `python -m simulations fig3 ... | head -1` printed a BrokenPipeError traceback (a review)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-m", "simulations", "fig4", "--trials", "1", "--depth", "2",
                             "--tokens", "4", "--width", "4", "--heads", "1", "--device", "cpu", "--no-progress",
                             "--out", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=tmp_path)
    proc.stdout.close()  # before the first line is written: the process starts far slower than this
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1 and "Traceback" not in err and "BrokenPipe" not in err, err
    assert (tmp_path / "fig4.csv").is_file()  # the run's files were written before its summary


def test_every_flag_of_every_command_says_what_it_is():
    # train's help read "archs (default ...)", "clip", "patch" (the field's bare name), fig5's --taus and train's
    # --depths and --lrs only their defaults, --seed "(real draws nothing)" in every figure (a review)
    from simulations import cli

    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in [*commands.items(), *((f"sweep {f}", cli.sweep_parser(f)) for f in ("fig2", "fig3", "fig5"))]:
        for action in sub._actions:
            if not action.option_strings or action.dest == "help":
                continue
            text = action.help or ""
            said = text.split("(default")[0].split(":")[0].strip()  # what it says before its default
            assert said not in ("", action.dest, action.dest.replace("_", " ")), (name, action.dest, text)
            if name != "real":
                assert "real draws nothing" not in text, (name, action.dest)
