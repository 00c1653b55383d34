"""README's quoted numbers are generated: its findings blocks are exactly what docs/findings/ renders, and a run
at the stated config reproduces the stored findings."""

import json
import math
from pathlib import Path

import pytest

from simulations.cli import main
from simulations.output.quoting import Quoter, sig
from simulations.readme import (readme_blocks, record_name, render_findings, rendered_store, replace_blocks,
                                sweep_record_name, update_readme)
from simulations.engine.result import FigureResult
from simulations.engine.stats import SummaryRow

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "docs" / "findings"


# Findings that measure rounding error itself: a run reproduces their magnitude, not their digits, which move with
# the BLAS and the processor. Seen on an H100 machine's CPU (MKL, torch 2.11): C2_max_rel_error 8.868e-14 against
# the stored 8.885e-14 (OpenBLAS, torch 2.13), every other finding the same to 1e-9.
ROUNDING = ("C2_max_rel_error",)


def _same(a, b, key: str | None = None) -> bool:
    """Equal, with floats to 1e-9 relative (CPU runs repeat exactly on one machine; this forgives JSON round trips
    and the last bits of other machines), and the ROUNDING findings within a factor of 2."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k], k) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y, key) for x, y in zip(a, b))
    if key in ROUNDING:
        return 0.5 <= a / b <= 2 if b else a == 0
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9) or (math.isnan(a) and math.isnan(b))
    return a == b


def _rounding_as_stored(found: dict, stored: dict) -> dict:
    """``found`` with the ROUNDING findings taken from ``stored`` (their digits are not the run's to repeat)."""
    return {k: stored[k] if k in ROUNDING else v for k, v in found.items()}


def test_every_readme_findings_block_is_the_text_rendered_from_docs_findings():
    blocks = readme_blocks((ROOT / "README.md").read_text())
    rendered = rendered_store(STORE)
    assert {"fig1", "fig2", "fig3", "fig3.attention=symmetric", "fig4", "fig5", "real", "train"} <= set(blocks)
    for name, body in blocks.items():
        assert name in rendered, f"README block {name!r} has no docs/findings/{name}.json"
        assert body == rendered[name] + "\n", f"README block {name!r} was edited by hand or is stale"


def test_stored_findings_name_the_run_they_came_from():
    for path in STORE.glob("*.json"):
        record = json.loads(path.read_text())
        if record["figure"] == "sweep":  # a sweep: named by its figure and swept flags, its command in "flags"
            assert path.stem == sweep_record_name(record["findings"])
            assert record["flags"].startswith(record["findings"]["figure"] + " ")
            continue
        assert path.stem == record_name(record["figure"], record["config"])
        assert record["seed"] == record["config"]["seed"] == record["findings"]["seed"]


def test_fig4_at_its_defaults_reproduces_the_stored_findings():
    from simulations import Fig4Config
    from simulations.studies.fig4 import fig4_findings, simulate_fig4

    stored = json.loads((STORE / "fig4.json").read_text())
    assert stored["flags"] == ""  # the README quotes it as the default run
    result = simulate_fig4(Fig4Config(device="cpu"), progress=False)
    found = json.loads(json.dumps(fig4_findings(result)))
    assert _same(found, stored["findings"])
    assert render_findings("fig4", found) == render_findings("fig4", stored["findings"])


def test_fig3_at_its_defaults_reproduces_the_stored_findings():
    from simulations import Fig3Config
    from simulations.studies.fig3 import fig3_findings, simulate_fig3

    stored = json.loads((STORE / "fig3.json").read_text())
    assert stored["flags"] == ""
    found = json.loads(json.dumps(fig3_findings(simulate_fig3(Fig3Config(device="cpu"), progress=False))))
    assert _same(found, stored["findings"])
    assert render_findings("fig3", _rounding_as_stored(found, stored["findings"])) == render_findings(
        "fig3", stored["findings"])


def test_a_number_typed_into_a_block_is_put_back(tmp_path):
    readme = tmp_path / "README.md"
    good = (ROOT / "README.md").read_text()
    body = readme_blocks(good)["fig2"]
    readme.write_text(good.replace(body, body.replace("0.83", "0.95"), 1))
    assert update_readme(readme, STORE) and readme.read_text() == good
    assert not update_readme(readme, STORE)


def test_a_block_without_findings_and_unpaired_markers_are_errors():
    with pytest.raises(ValueError, match="no findings for the README block"):
        replace_blocks("<!-- findings:fig9 -->\nx\n<!-- /findings:fig9 -->\n", {})
    with pytest.raises(ValueError, match="do not pair up"):
        readme_blocks("<!-- findings:fig2 -->\nx\n")


def test_means_over_fewer_than_all_trials_are_named_in_the_text():
    rows = [SummaryRow(k, m, 0.5, 0.4, 0.6, 10 if k < 2 else 7) for k in range(3) for m in ("t_sim", "t_div")]
    result = FigureResult("fig5", {"trials": 10, "seed": 0}, rows)
    q = Quoter(result)
    assert q.mean("t_div", -1) == 0.5 and math.isnan(q.mean("t_div", 5))
    findings = q.finish({})
    assert findings["partial_means"] == [{"metric": "t_div", "step": 2, "count": 7, "trials": 10}]
    assert sig(0.5) == "0.50" and sig(48.3) == "48" and sig(2.5e-4) == "0.00025" and sig(128.4) == "128"


@pytest.mark.parametrize("x, digits, text", [
    (99.97, 2, "100"), (100, 2, "100"), (-99.97, 2, "-100"), (99.4, 2, "99"),  # 99.97 was '1.0e2'
    (999.6, 3, "1000"), (9.97, 2, "10"),
    (999999.7, 2, "1.0e6"), (999999.4, 2, "999999"), (1e6, 2, "1.0e6"),  # 999999.7 was '1000000', seven digits
])
def test_sig_decides_between_full_and_exponent_form_at_the_rounded_value(x, digits, text):
    assert sig(x, digits) == text


def test_a_metric_left_out_at_every_step_reads_as_nan_in_findings():
    # fig3 at beta = 0: the xi ratios are undefined in every trial, so the metric has no rows at all
    rows = [SummaryRow(k, "t_div", 0.5, 0.4, 0.6, 10) for k in range(3)]
    result = FigureResult("fig3", {"trials": 10, "seed": 0}, rows, checks={"excluded_values": {"xi": 30}})
    assert Quoter(result).means("xi") == {} and math.isnan(Quoter(result).mean("xi", 2))
    with pytest.raises(ValueError, match="unknown metric 'typo'"):
        Quoter(result).means("typo")


@pytest.mark.parametrize("argv, message", [
    (["--from", "no/such/dir"], "--from must be a directory"),
    (["--store", "no/such/store"], "no findings in"),
    (["--readme", "no/such/README.md"], "cannot read --readme"),
])
def test_bad_findings_flags_fail_with_one_line(capsys, argv, message):
    assert main(["findings", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_record_name_holds_no_path_separator_whatever_the_flags():
    name = record_name("real", {"model": "/tmp/models/tiny gpt2", "seed": 0})
    assert name == "real.model=tiny,gpt2" and "/" not in name
