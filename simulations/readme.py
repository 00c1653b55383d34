"""README findings: the numbers README.md quotes, computed from a run, never typed.

A figure module provides ``<name>_findings(result) -> dict`` (plain numbers, lists and strings, computed from
a :class:`~simulations.engine.result.FigureResult`) and ``render_<name>_findings(findings) -> str`` (markdown text),
registered as ``Figure.findings`` and ``Figure.render`` in :mod:`simulations.registry`. Every run stores its
findings in ``DIR/<name>.json`` under ``"findings"`` and the CLI prints the rendered text.

``python -m simulations findings --from DIR --readme README.md`` copies the findings of the runs in ``DIR``
into ``docs/findings/<record>.json`` (with the config, seed and versions they came from; ``<record>`` is the
figure's name at its defaults, ``fig2.arch=cb`` for a run with ``--arch cb``) and rewrites every block of
README.md between ``<!-- findings:<record> -->`` and ``<!-- /findings:<record> -->`` with the text rendered
from ``docs/findings/<record>.json``, which ends by naming the command that produced it.
``tests/test_findings.py`` checks that the README's blocks are exactly that text, so a number typed into a
block fails the tests.
"""

from __future__ import annotations

import dataclasses
import json
import re
import textwrap
from pathlib import Path

from .engine.files import atomic_write
from .engine.result import FigureResult
from .output.quoting import partial_note
from .registry import FIGURES

__all__ = ["render_findings", "findings_record", "provenance", "record_name", "load_record", "load_result",
           "readme_blocks", "replace_blocks", "rendered_store", "update_readme", "store_findings", "sweep_record_name"]

_BLOCK = re.compile(r"<!-- findings:(?P<name>[\w.,=-]+) -->\n(?P<body>.*?)<!-- /findings:(?P=name) -->", re.S)
_OPEN = re.compile(r"<!-- (/?)findings:([\w.,=-]+) -->")
# fields that never change a result (scheduling, placement), left out of a record's "flags"
_IRRELEVANT = ("chunk", "device", "workers")


def render_findings(name: str, findings: dict, flags: str = "") -> str:
    """The markdown text of ``name``'s findings; ``flags`` is the run's non-default flags ('' at defaults)."""

    fig = FIGURES.get(name)
    if fig is None or fig.render is None:
        with_findings = [n for n, f in FIGURES.items() if f.render is not None]
        raise ValueError(f"no findings renderer for {name!r}; figures with findings: {', '.join(with_findings)}")
    source = f"(Run: `python -m simulations {name}{' ' + flags if flags else ''}`, seed {findings.get('seed')}.)"
    return _with_source(fig.render(findings), partial_note(findings), source)


def _with_source(text: str, note: str, source: str) -> str:
    """A findings text with its note and the command it came from: a table gets them below it; prose is wrapped
    like the README's, so a changed number shows as a one-line diff."""
    if "\n" in text:
        return "\n\n".join(s for s in (text, note.strip(), source) if s)
    return textwrap.fill(f"{text}{note} {source}", width=116, break_long_words=False, break_on_hyphens=False)


def _config_defaults(name: str) -> dict:

    return {f.name: f.default for f in dataclasses.fields(FIGURES[name].config)}


def _changed(name: str, config: dict) -> list[tuple[str, str]]:
    """(field, value as the CLI spells it) for every field of ``config`` off ``name``'s defaults."""
    out = []
    for key, default in _config_defaults(name).items():
        if key in _IRRELEVANT or key not in config:
            continue
        value = config[key]
        if isinstance(value, (list, tuple)):
            same = isinstance(default, tuple) and list(value) == list(default)
            shown = " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        else:
            same, shown = value == default, f"{value:g}" if isinstance(value, float) else str(value)
        if not same:
            out.append((key, shown))
    return out


def provenance(name: str, config: dict) -> str:
    """The flags of ``config`` that differ from ``name``'s defaults, as CLI flags ('' at defaults)."""
    return " ".join(f"--{key.replace('_', '-')} {shown}" for key, shown in _changed(name, config))


def record_name(name: str, config: dict) -> str:
    """The store's (and README marker's) name of a run: ``fig2`` at defaults, ``fig2.arch=cb`` off them. A path
    (``real --model DIR``, ``--text FILE``) is named by its last component; other characters a file name or a
    README marker cannot hold become ``_``."""
    def safe(shown: str) -> str:
        shown = Path(shown).name if "/" in shown else shown
        return re.sub(r"[^\w.,=-]", "_", shown.replace(" ", ","))

    return ".".join([name, *(f"{key}={safe(shown)}" for key, shown in _changed(name, config))])


def findings_record(name: str, meta: dict) -> dict:
    """What docs/findings/<record name>.json holds: the findings and the run they came from."""
    return {"figure": name, "seed": meta.get("seed"), "flags": provenance(name, meta.get("config", {})),
            "config": meta.get("config", {}), "device": meta.get("device"), "versions": meta.get("versions", {}),
            "findings": meta["findings"]}


def load_record(path: str | Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read findings from {str(path)!r}: {exc}") from None


def load_result(directory: str | Path, name: str) -> FigureResult:
    """A result rebuilt from ``DIR/<name>.csv`` and ``.json`` (for outputs written before findings existed)."""
    from .engine.stats import SummaryRow
    from .output.writing import read_csv

    directory = Path(directory)
    meta = load_record(directory / f"{name}.json")
    rows = [SummaryRow(r["step"], r["metric"], r["mean"], r["ci_low"], r["ci_high"], r["count"])
            for r in read_csv(directory / f"{name}.csv")]
    return FigureResult(name, meta.get("config", {}), rows, meta.get("checks", {}), meta.get("device", "cpu"),
                        meta.get("elapsed_s", 0.0))


def _meta_with_findings(directory: Path, name: str) -> dict:

    meta = load_record(directory / f"{name}.json")
    if "findings" not in meta:  # written before findings existed: recompute them from the CSV and JSON
        result = load_result(directory, name)
        meta["findings"] = FIGURES[name].findings(result)
    return meta


def store_findings(source: str | Path, store: str | Path) -> list[str]:
    """Copy the findings of every run in ``source`` (``<name>.json`` of a figure with findings) into
    ``store/<record name>.json`` (:func:`record_name`); returns the record names written."""

    source, store = Path(source), Path(store)
    if not source.is_dir():
        raise ValueError(f"--from must be a directory of run outputs; {str(source)!r} is not a directory")
    names = [n for n, f in FIGURES.items() if f.findings is not None and (source / f"{n}.json").is_file()]
    sweep = source / "sweep.json"
    if not names and not sweep.is_file():
        raise ValueError(f"{str(source)!r} holds no run output with findings (expected one of "
                         f"{', '.join(n + '.json' for n, f in FIGURES.items() if f.findings is not None)})")
    store.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        record = findings_record(name, _meta_with_findings(source, name))
        written.append(record_name(name, record["config"]))
        atomic_write(store / f"{written[-1]}.json", (json.dumps(record, indent=2) + "\n").encode())
    if sweep.is_file():
        meta = load_record(sweep)
        if "findings" not in meta:
            raise ValueError(f"{str(sweep)!r} holds no findings (written by an older version: run the sweep again)")
        f = meta["findings"]
        written.append(sweep_record_name(f))
        record = {"figure": "sweep", "flags": sweep_flags(f), "versions": meta.get("versions", {}), "findings": f}
        atomic_write(store / f"{written[-1]}.json", (json.dumps(record, indent=2) + "\n").encode())
    return written


def sweep_record_name(f: dict) -> str:
    """The store's name of a sweep's findings: ``sweep.fig3.beta,tokens`` (the figure, then the swept flags)."""
    return f"sweep.{f['figure']}.{','.join(f['swept'])}"


def sweep_flags(f: dict) -> str:
    """The sweep command's arguments, from its findings: the figure, then every swept and fixed flag."""
    def shown(v):
        return ",".join(map(str, v)) if isinstance(v, list) else str(v)

    flags = {**f["swept"], **f["fixed"]}
    return " ".join([f["figure"], *(f"--{k.replace('_', '-')} {shown(v)}" for k, v in flags.items())])


def render_record(record: dict) -> str:
    if record["figure"] == "sweep":
        from .studies.sweep_findings import render_sweep_findings

        seed = record["findings"].get("seed")  # None where --seed was swept: the flags name every seed
        source = f"(Run: `python -m simulations sweep {record['flags']}`{'' if seed is None else f', seed {seed}'}.)"
        return _with_source(render_sweep_findings(record["findings"]), "", source)
    return render_findings(record["figure"], record["findings"], record.get("flags", ""))


def readme_blocks(text: str) -> dict[str, str]:
    """name -> the text between a README's ``<!-- findings:name -->`` and ``<!-- /findings:name -->``."""
    opened = [(m.group(1), m.group(2)) for m in _OPEN.finditer(text)]
    blocks = {m.group("name"): m.group("body") for m in _BLOCK.finditer(text)}
    if len(opened) != 2 * len(blocks):
        raise ValueError("README findings markers do not pair up: every <!-- findings:NAME --> (at the end of a "
                         "line) needs its <!-- /findings:NAME -->")
    return blocks


def replace_blocks(text: str, rendered: dict[str, str]) -> str:
    """``text`` with every findings block replaced by ``rendered[name]`` (a block without one is an error)."""
    missing = sorted(set(readme_blocks(text)) - set(rendered))
    if missing:
        raise ValueError(f"no findings for the README block(s) {', '.join(missing)}; run the figure(s) and "
                         f"pass --from DIR, or add docs/findings/<record>.json")
    return _BLOCK.sub(lambda m: f"<!-- findings:{m['name']} -->\n{rendered[m['name']]}\n"
                                f"<!-- /findings:{m['name']} -->", text)


def rendered_store(store: str | Path) -> dict[str, str]:
    """record name -> rendered text of every ``store/<record>.json``."""
    paths = sorted(Path(store).glob("*.json"))
    if not paths:
        raise ValueError(f"no findings in {str(store)!r} (expected <record>.json files; pass --from DIR to add some)")
    return {p.stem: render_record(load_record(p)) for p in paths}


def update_readme(readme: str | Path, store: str | Path) -> bool:
    """Rewrite ``readme``'s findings blocks from ``store``; True when the file changed."""

    readme = Path(readme)
    try:
        text = readme.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read --readme {str(readme)!r}: {exc}") from None
    new = replace_blocks(text, rendered_store(store))
    if new != text:
        atomic_write(readme, new.encode())
    return new != text
