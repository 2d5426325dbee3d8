"""A sweep's runs: a grid of share-link values (``seed=0-9 lr=0.01,0.1,1``) applied to a starting link.

Every run of a sweep is a share link: the grid's values are put into the starting link by name and the link is
decoded, so a sweep's run is exactly the run that link opens on the page (and the one the store keeps under its
key). Values are separated by commas; for the settings whose one value is itself a comma list (widths,
variants), alternatives are separated by ``/``: ``widths=100,100/50,50,50``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from bnviz import config as C
from bnviz import urlstate
from bnviz.config import ExperimentConfig
from bnviz.table.store import run_key

MAX_RUNS = 10_000  # runs in one sweep: a typo such as seed=0-1000000 is refused, not queued
LIST_FIELDS = ("widths", "variants")  # one value is a comma list: alternatives are separated by "/"
SWEEPABLE = tuple(f.name for f in urlstate.CONFIG_FIELDS)


@dataclass(frozen=True)
class Job:
    """One run of a sweep."""

    label: str  # "seed=3 lr=0.1": the grid's values, in the grid's order ("" for no grid)
    preset: str
    config: ExperimentConfig
    query: str  # the run's share-link query string (with preset)


def _whole_field(f: urlstate.Field) -> bool:
    """Whether ``f`` takes a whole number (so that ``a-b`` is a range of them)."""
    value = getattr(C.PRESETS[C.DEFAULT_PRESET].config, f.target)
    return type(value) is int


def _values(spec: str, f: urlstate.Field, text: str) -> list[str]:
    parts = [p.strip() for p in text.split("/" if f.name in LIST_FIELDS else ",")]
    if any(not p for p in parts):
        raise ValueError(f"{spec}: an empty value; give {f.name}=VALUE,VALUE,... "
                         f"({'alternatives separated by /' if f.name in LIST_FIELDS else 'separated by commas'})")
    out: list[str] = []
    for part in parts:
        lo_hi = part.split("-")
        if _whole_field(f) and len(lo_hi) == 2 and all(urlstate.WHOLE.fullmatch(s.strip()) for s in lo_hi):
            lo, hi = (int(s) for s in lo_hi)
            if lo > hi:
                raise ValueError(f"{spec}: the range {part} goes down; write the smaller number first ({hi}-{lo})")
            if hi - lo >= MAX_RUNS:
                raise ValueError(f"{spec}: the range {part} has {hi - lo + 1:,} values; at most {MAX_RUNS:,} runs "
                                 "in one sweep")
            for end in (lo, hi):
                _check(spec, f, str(end))
            out.extend(str(v) for v in range(lo, hi + 1))
        else:
            _check(spec, f, part)
            out.append(part)
    return out


def _check(spec: str, f: urlstate.Field, value: str) -> None:
    if len(value) > urlstate.MAX_VALUE_LEN:
        raise ValueError(f"{spec}: a value is longer than {urlstate.MAX_VALUE_LEN} characters; {f.requirement()}")
    try:
        f.parse(value)
    except Exception as exc:  # noqa: BLE001 - any refusal: the message uses the link's words, never the exception's
        why = f" ({exc})" if isinstance(exc, urlstate.Refused) else ""
        raise ValueError(f"{spec}: {value} is not {f.rule.allowed}{why}") from None


def parse_grid(specs: Sequence[str]) -> dict[str, list[str]]:
    """``["seed=0-9", "lr=0.01,0.1,1"]`` -> ``{"seed": ["0", .., "9"], "lr": ["0.01", "0.1", "1"]}``.

    Names are share-link names (config fields only, not view fields); ``a-b`` is an inclusive range of whole numbers
    for whole-number fields; every value is checked by its field's own rule. Raises ValueError with one plain line
    naming the spec for anything wrong: an unknown name, a repeated name, an empty value, a bad value, a reversed
    range.
    """
    grid: dict[str, list[str]] = {}
    for spec in specs:
        name, eq, text = spec.partition("=")
        name = name.strip()
        if not eq or not name:
            raise ValueError(f"{spec or 'an empty spec'}: write a setting and its values, such as seed=0-9 or "
                             "lr=0.01,0.1,1")
        f = urlstate.BY_NAME.get(name)
        if f is None or name not in SWEEPABLE:
            what = (f"{name} is a view setting, not part of a run" if f is not None
                    else f"a link has no setting called {urlstate._typed(name)}")
            raise ValueError(f"{spec}: {what}; a sweep varies {urlstate._or(SWEEPABLE)}")
        if name in grid:
            raise ValueError(f"{spec}: {name} is given twice; put all its values in one spec")
        if not text.strip():
            raise ValueError(f"{spec}: no value given for {name}")
        grid[name] = _values(spec, f, text)
    return grid


def jobs(preset: str, base: ExperimentConfig, grid: Mapping[str, Sequence[str]]) -> list[Job]:
    """Every combination of the grid's values (in the grid's order) applied to ``base`` as a link applies it:
    ``urlstate.encode(preset, base)``, the values put in by name, ``urlstate.decode``. A combination the link
    refuses (settings that do not fit together) raises ValueError naming it; combinations that make the same run
    (the same store key) are kept once."""
    names = list(grid)
    count = 1
    for name in names:
        count *= len(grid[name])
    if count > MAX_RUNS:
        raise ValueError(f"the grid makes {count:,} runs; at most {MAX_RUNS:,} in one sweep")
    start = urlstate.encode(preset, base)
    out: list[Job] = []
    seen: set[str] = set()
    for values in itertools.product(*(grid[n] for n in names)):
        label = " ".join(f"{n}={v}" for n, v in zip(names, values, strict=True))
        params = {**start, **dict(zip(names, values, strict=True))}
        decoded = urlstate.decode(params)
        if decoded.warnings:
            raise ValueError(f"{label or 'the run'}: {decoded.warnings[0]}")
        key = run_key(decoded.config)
        if key in seen:
            continue
        seen.add(key)
        query = urlencode(urlstate.encode(decoded.preset, decoded.config), safe=",")
        out.append(Job(label, decoded.preset, decoded.config, query))
    return out
