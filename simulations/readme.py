"""README findings: the numbers README.md quotes, computed from a run, never typed.

A figure module provides ``<name>_findings(result) -> dict`` (plain numbers, lists and strings, computed from
a :class:`~simulations.engine.result.FigureResult`) and ``render_<name>_findings(findings) -> str`` (markdown text),
registered as ``Figure.findings`` and ``Figure.render`` in :mod:`simulations.registry`. Every run stores its
findings in ``DIR/<name>.json`` under ``"findings"`` and the CLI prints the rendered text.

``python -m simulations findings --from DIR --readme README.md`` copies the findings of the runs in ``DIR``
into ``docs/findings/<record>.json`` (with the config, seed and versions they came from; ``<record>`` is the
figure's name at its defaults, ``fig2.arch=cb`` for a run with ``--arch cb``; a sweep's is named by its grid,
:func:`sweep_record_name`) and rewrites every block of
README.md between ``<!-- findings:<record> -->`` and ``<!-- /findings:<record> -->`` with the text rendered
from ``docs/findings/<record>.json``, which ends by naming the command that produced it.
``tests/test_findings.py`` checks that the README's blocks are exactly that text, so a number typed into a
block fails the tests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import textwrap
from pathlib import Path

from .engine.files import atomic_write
from .engine.result import FigureResult
from .output.quoting import partial_note
from .registry import FIGURES

__all__ = ["render_findings", "findings_record", "provenance", "record_name", "load_record", "load_result",
           "readme_blocks", "replace_blocks", "run_config", "rendered_store", "update_readme", "store_findings",
           "sweep_record_name", "collect_findings", "write_records"]

_BLOCK = re.compile(r"<!-- findings:(?P<name>[\w.,=-]+) -->\n(?P<body>.*?)<!-- /findings:(?P=name) -->", re.S)
_OPEN = re.compile(r"<!-- (/?)findings:([\w.,=-]+) -->")
# fields that never change a result (scheduling, placement), left out of a record's "flags"; the device is kept
# where it is a GPU (:func:`run_config`): a GPU's random numbers are not a CPU's
_IRRELEVANT = ("chunk", "workers")


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
        if key == "device":  # named only for a GPU run: on a CPU, cpu and auto draw the same numbers
            if str(config[key]).startswith("cuda"):
                out.append((key, "cuda"))
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


def run_config(config: dict, device: str | None) -> dict:
    """``config`` with the device the run actually used where that was a GPU (``--device auto`` on a GPU
    machine): its record is named, and its command quoted, with ``--device cuda``, which reproduces it."""
    return {**config, "device": "cuda"} if str(device).startswith("cuda") else config


def provenance(name: str, config: dict) -> str:
    """The flags of ``config`` that differ from ``name``'s defaults, as CLI flags ('' at defaults)."""
    return " ".join(f"--{key.replace('_', '-')} {shown}" for key, shown in _changed(name, config))


def record_name(name: str, config: dict) -> str:
    """The store's (and README marker's) name of a run: ``fig2`` at defaults, ``fig2.arch=cb`` off them. A path
    (``real --model DIR``, ``--text FILE``) is named by its last component; other characters a file name or a
    README marker cannot hold become ``_``."""
    return ".".join([name, *(f"{key}={_safe(shown)}" for key, shown in _changed(name, config))])


def _safe(shown: str) -> str:
    """A flag's value as a record name holds it: a path by its last component, a list comma-joined, and any other
    character a file name or a README marker cannot hold as ``_``."""
    shown = Path(shown).name if "/" in shown else shown
    return re.sub(r"[^\w.,=-]", "_", shown.replace(" ", ","))


def findings_record(name: str, meta: dict) -> dict:
    """What docs/findings/<record name>.json holds: the findings and the run they came from."""
    config = run_config(meta.get("config", {}), meta.get("device"))
    return {"figure": name, "seed": meta.get("seed"), "flags": provenance(name, config), "config": config,
            "device": meta.get("device"), "versions": meta.get("versions", {}),
            "findings": meta["findings"]}


def load_record(path: str | Path) -> dict:
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read findings from {str(path)!r}: {exc}") from None
    if not isinstance(record, dict):
        raise ValueError(f"cannot read findings from {str(path)!r}: a JSON object expected, found a "
                         f"{type(record).__name__}")
    return record


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


def _with_findings(directory: Path, name: str, meta: dict) -> dict:

    if "findings" not in meta:  # written before findings existed: recompute them from the CSV and JSON
        result = load_result(directory, name)
        meta["findings"] = FIGURES[name].findings(result)
    for key in ("findings", "config"):
        if not isinstance(meta.get(key, {}), dict):
            raise TypeError(f"its {key!r} is a {type(meta[key]).__name__}, not a JSON object")
    return meta


# what a damaged run output raises on its way to a rendered record (a missing CSV, a missing key, a wrong type)
_DAMAGED = (OSError, KeyError, TypeError, AttributeError, IndexError, ValueError)


def _damaged(path: Path, exc: Exception, what: str = "a run output") -> ValueError:
    why = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
    return ValueError(f"cannot take findings from {str(path)!r} (damaged or not {what}): {why}")


def collect_findings(source: str | Path, stale: list[str] | None = None) -> dict[str, dict]:
    """record name -> record (:func:`findings_record`) of every run in ``source`` (``<name>.json`` of a figure
    with findings, and ``sweep.json``). Every input is read, checked and rendered here and nothing is written, so
    a damaged one is a ValueError naming it before the store is touched. ``stale`` (if given) gets the path of
    every run written by other code than this checkout's (its ``versions.code`` differs or is missing)."""
    from .engine.checkpoint import code_hash

    current = code_hash()

    def check_code(path: Path, meta: dict) -> None:
        versions = meta.get("versions")
        if stale is not None and (not isinstance(versions, dict) or versions.get("code") != current):
            stale.append(str(path))

    source = Path(source)
    if not source.is_dir():
        raise ValueError(f"--from must be a directory of run outputs; {str(source)!r} is not a directory")
    names = [n for n, f in FIGURES.items() if f.findings is not None and (source / f"{n}.json").is_file()]
    sweep = source / "sweep.json"
    if not names and not sweep.is_file():
        raise ValueError(f"{str(source)!r} holds no run output with findings (expected one of "
                         f"{', '.join(n + '.json' for n, f in FIGURES.items() if f.findings is not None)})")
    records = {}
    for name in names:
        path = source / f"{name}.json"
        meta = load_record(path)  # names the file itself when it is no JSON object
        check_code(path, meta)
        try:
            record = findings_record(name, _with_findings(source, name, meta))
            render_record(record)  # findings the README could not be rendered from are damaged too
        except _DAMAGED as exc:
            raise _damaged(path, exc) from None
        records[record_name(name, record["config"])] = record
    if sweep.is_file():
        meta = load_record(sweep)
        check_code(sweep, meta)
        if "findings" not in meta:
            raise ValueError(f"{str(sweep)!r} holds no findings (written by an older version: run the sweep again)")
        try:
            f = meta["findings"]
            record = {"figure": "sweep", "flags": sweep_flags(f), "versions": meta.get("versions", {}),
                      "findings": f}
            render_record(record)
            records[sweep_record_name(f)] = record
        except _DAMAGED as exc:
            raise _damaged(sweep, exc) from None
    return records


def write_records(store: str | Path, records: dict[str, dict]) -> None:
    """Write each record to ``store/<record name>.json``, atomically."""
    store = Path(store)
    try:
        store.mkdir(parents=True, exist_ok=True)
        for name, record in records.items():
            atomic_write(store / f"{name}.json", (json.dumps(record, indent=2) + "\n").encode())
    except OSError as exc:
        raise ValueError(f"cannot write --store {str(store)!r}: {exc.strerror or exc}") from None


def store_findings(source: str | Path, store: str | Path) -> list[str]:
    """Copy the findings of every run in ``source`` into ``store/<record name>.json`` (:func:`record_name`,
    :func:`sweep_record_name`), all inputs checked before any is written; returns the record names written."""

    records = collect_findings(source)
    write_records(store, records)
    return list(records)


# The sweeps README quotes, stored before a sweep's record was named by its grid: their commands (as
# sweep_flags spells them) keep these names, so running them again updates the same record and README block.
_PUBLISHED_SWEEPS = {
    "fig3 --beta 0.25,0.5,1.0,2.0,4.0 --tokens 16,32,64,128 --trials 300": "sweep.fig3.beta,tokens",
    "fig3 --attention softmax,causal,dirichlet,sinkhorn,banded --trials 1000": "sweep.fig3.attention",
}
# longer names become a hash of the grid: a file name holds at most 255 bytes (with .json and a temporary suffix)
_LONGEST_SWEEP_NAME = 150


def sweep_record_name(f: dict) -> str:
    """The store's name of a sweep's findings, from its grid, as :func:`record_name` names a figure's run: the
    figure, every swept flag with its values, then the fixed flags off the figure's defaults
    (``sweep.fig3.beta=1,4.tokens=8,16.depth=4.trials=20``), so two different grids never share a record. Past
    150 characters the values become a hash (``sweep.fig3.seed,tokens.grid=<12 hex digits>``). The sweeps README
    quotes keep the names they were stored under (``sweep.fig3.beta,tokens``: see ``_PUBLISHED_SWEEPS``)."""
    published = _PUBLISHED_SWEEPS.get(sweep_flags(f))
    if published is not None:
        return published
    figure = f["figure"]
    swept = [f"{key}={_safe(_shown_list(values))}" for key, values in f["swept"].items()]
    fixed = [f"{key}={_safe(shown)}" for key, shown in _changed(figure, f["fixed"])]  # the order of the config
    name = ".".join(["sweep", figure, *swept, *fixed])
    if len(name) > _LONGEST_SWEEP_NAME:
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        name = f"sweep.{figure}.{','.join(f['swept'])}.grid={digest}"
    return name


def _shown_list(values: list) -> str:
    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


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


def rendered_store(store: str | Path, records: dict[str, dict] | None = None) -> dict[str, str]:
    """record name -> rendered text of every ``store/<record>.json``, and of ``records`` (not yet written: they
    replace the store's of the same name)."""
    records = records or {}
    paths = sorted(p for p in Path(store).glob("*.json") if p.stem not in records)
    if not paths and not records:
        raise ValueError(f"no findings in {str(store)!r} (expected <record>.json files; pass --from DIR to add some)")
    rendered = {}
    for p in paths:
        record = load_record(p)
        try:
            rendered[p.stem] = render_record(record)
        except _DAMAGED as exc:
            raise _damaged(p, exc, "a findings record") from None
    return dict(sorted({**rendered, **{n: render_record(r) for n, r in records.items()}}.items()))


def update_readme(readme: str | Path, store: str | Path, records: dict[str, dict] | None = None) -> bool:
    """Rewrite ``readme``'s findings blocks from ``store`` and ``records`` (:func:`collect_findings`), which are
    written into ``store`` too; nothing is written unless README, store and records all render. True when the
    README changed."""

    readme = Path(readme)
    try:
        text = readme.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read --readme {str(readme)!r}: {exc}") from None
    new = replace_blocks(text, rendered_store(store, records))
    write_records(store, records or {})
    if new != text:
        atomic_write(readme, new.encode())
    return new != text
