"""The share-link codec: one declarative table of query-string fields, parsed and written by one loop.

A link holds the whole state in names a teacher can edit by hand, e.g.
``?preset=ioffe&seed=0&steps=5000&lr=0.5&batch=60&activation=sigmoid&widths=100,100,100&variants=none,bn``.
Decoding starts from the named preset and applies every field it understands; an unknown name or a bad
value is ignored and reported in a warning that names it and says in plain words which values the field
allows (never an exception's text), so a page always opens (TensorFlow Playground's state.ts works the
same way).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bnviz import config as C
from bnviz import owndata
from bnviz.config import ExperimentConfig

MAX_VALUE_LEN = 200  # longer values are refused before parsing: nothing huge is ever parsed


class Refused(ValueError):
    """A value a rule refuses, saying in plain words what is wrong with it (the warning quotes it)."""


@dataclass(frozen=True)
class Rule:
    """How a field's text is read, and the values it allows in words a teacher reads in the warning."""

    read: Callable[[str], Any]  # raises ValueError for a value it refuses; only Refused's words are shown
    allowed: str  # e.g. "a whole number from 1 to 1,000,000"


@dataclass(frozen=True)
class Field:
    """One query-string field: its name, the config attribute or view key it sets, and how to parse it."""

    name: str
    target: str  # ExperimentConfig attribute, or "view:<key>"
    rule: Rule
    about: str  # what it sets, as the subject of "... must be <allowed>": "the learning rate"
    show: Callable[[Any], str] = str

    def parse(self, text: str) -> Any:
        return self.rule.read(text)

    def requirement(self) -> str:
        return f"{self.about} must be {self.rule.allowed}"


def _number(x: float) -> str:
    """A limit as a reader writes it: 1,000,000 or 0.000001, never 1e-06."""
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.12f}".rstrip("0")


def _or(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


WHOLE = re.compile(r"[+-]?\d+")


def _whole(text: str) -> int:
    value = text.strip()
    if not WHOLE.fullmatch(value):
        raise ValueError("not a whole number")
    return int(value)


def _int(lo: float, hi: float, note: str = "") -> Rule:
    def read(text: str) -> int:
        value = _whole(text)
        if not lo <= value <= hi:
            raise ValueError("out of range")
        return value
    return Rule(read, f"a whole number from {_number(lo)} to {_number(hi)}{note}")


def _float(lo: float, hi: float, example: str) -> Rule:
    def read(text: str) -> float:
        value = float(text.strip())
        if not lo <= value <= hi:  # also refuses nan
            raise ValueError("out of range")
        return value
    return Rule(read, f"a number from {_number(lo)} to {_number(hi)}, such as {example}")


def _choice(registry: dict) -> Rule:
    def read(text: str) -> str:
        if text not in registry:
            raise ValueError("not a choice")
        return text
    return Rule(read, f"one of {_or(registry)}")


def _widths() -> Rule:
    (lo, hi), most = C.LIMITS["width"], C.LIMITS["depth"][1]

    def read(text: str) -> tuple[int, ...]:
        parts = [p for p in text.replace(" ", "").split(",") if p]
        if not 1 <= len(parts) <= most:
            raise Refused(f"{len(parts)} widths given")
        for p in parts:
            if not WHOLE.fullmatch(p) or not lo <= int(p) <= hi:
                raise Refused(f"{_typed(p)} is not a width")
        return tuple(int(p) for p in parts)
    return Rule(read, f"1 to {most} whole numbers from {_number(lo)} to {_number(hi)}, separated by commas, "
                      "such as 100,100,100")


def _variants() -> Rule:
    def read(text: str) -> tuple[str, ...]:
        tokens = tuple(t for t in text.replace(" ", "").split(",") if t)
        for t in tokens:
            kind, placement = C.split_variant(t)
            if kind not in C.VARIANTS or (placement is not None and placement not in C.PLACEMENTS):
                raise Refused(f"{_typed(t)} is not a variant")
        if not tokens:
            raise Refused("no variant given")
        if len(set(tokens)) != len(tokens):
            raise Refused("a variant is named twice")
        return tokens
    return Rule(read, f"one or more different variants from {_or(C.VARIANTS)}, separated by commas, each "
                      f"optionally followed by {_or('@' + p for p in C.PLACEMENTS)}, such as none,bn")


def _flag() -> Rule:
    def read(text: str) -> bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on", ""):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError("not a flag")
    return Rule(read, "1 (on) or 0 (off)")


def _hash() -> Rule:
    def read(text: str) -> str:
        value = text.strip().lower()
        if len(value) != C.DATA_HASH_LEN or any(c not in "0123456789abcdef" for c in value):
            raise ValueError("not a hash")
        return value
    return Rule(read, f"the {C.DATA_HASH_LEN} hex digits that name an uploaded CSV file, such as 3f2a9c0e5b7d1146")


def _name(what: str, most: int) -> Rule:
    def read(text: str) -> str:
        value = text.strip()
        if not value or len(value) > most or not value.isprintable() or value.startswith(owndata.csvfile.FORMULA):
            raise ValueError("not a name")
        return value
    return Rule(read, f"{what} of 1 to {most} printable characters, not starting with =, +, - or @")


def _join(values) -> str:
    return ",".join(str(v) for v in values)


_L = C.LIMITS
FIELDS: tuple[Field, ...] = (
    Field("seed", "seed", _int(*_L["seed"]), "the random seed"),
    Field("steps", "steps", _int(*_L["steps"]), "the number of training steps"),
    Field("lr", "lr", _float(*_L["lr"], "0.1"), "the learning rate",
          lambda v: repr(float(v))),  # shortest exact form: 0.5, 1e-05
    Field("batch", "batch", _int(*_L["batch"]), "the batch size"),
    Field("optimizer", "optimizer", _choice(C.OPTIMIZERS), "the optimizer"),
    Field("init", "init", _choice(C.INITS), "the initialization of the weights (init)"),
    Field("activation", "activation", _choice(C.ACTIVATIONS), "the activation"),
    Field("widths", "widths", _widths(), "the hidden layer widths", _join),
    Field("variants", "variants", _variants(), "the variants", _join),
    Field("placement", "placement", _choice(C.PLACEMENTS), "the placement of the normalization"),
    Field("arch", "architecture", _choice(C.ARCHITECTURES), "the network (arch)"),
    Field("dataset", "dataset", _choice(C.DATASETS), "the dataset"),
    Field("dist", "input_dist", _choice(C.INPUT_DISTS), "the input distribution"),
    Field("features", "n_features", _int(*_L["n_features"]), "the number of input features"),
    Field("data", "data", _hash(), "your own data (data)"),
    Field("target", "target", _name("a column name", owndata.csvfile.MAX_NAME), "the target column"),
    Field("dataname", "data_name", _name("a file name", owndata.csvfile.MAX_FILE_NAME),
          "the data file's name (dataname)"),
    Field("view", "view", _choice(C.VIEWS), "the view of the statistics"),
    Field("every", "snapshot_every", _int(*_L["snapshot_every"]), "the number of steps between snapshots"),
    Field("panel", "view:panel", _choice(C.PANELS), "the panel"),
    Field("layer", "view:layer", _int(0, _L["depth"][1] - 1, " (0 is the first hidden layer)"), "the layer"),
    Field("unit", "view:unit", _int(-1, _L["width"][1] - 1, " (-1 means all units pooled)"), "the unit"),
    Field("lesson", "view:lesson", _int(1, 99), "the lesson step"),
    Field("present", "view:present", _flag(), "presenter mode", lambda v: "1" if v else "0"),
)
BY_NAME = {f.name: f for f in FIELDS}
OWN_DATA_FIELDS = ("data", "target", "dataname")  # in a link only when set (dataset=csv)
CONFIG_FIELDS = tuple(f for f in FIELDS if not f.target.startswith("view:"))
SHOWN_LEN = 40  # characters of a typed value or name quoted in a warning


def _typed(text: str) -> str:
    """What the visitor typed, for a warning: printable, at most SHOWN_LEN characters (then an ellipsis)."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= SHOWN_LEN else clean[:SHOWN_LEN] + "…"


def _as_typed(name: str, text: str) -> str:
    return f"{_typed(name)}={_typed(text)}" if text else f"{_typed(name)} (with no value)"


def refusal(f: Field, text: str, exc: Exception) -> str:
    """The warning for a value ``f`` refuses: the field as typed, what is wrong, and what it allows (the page's
    settings word their refusals with it too)."""
    why = f"{exc}; " if isinstance(exc, Refused) else ""
    return f"{_as_typed(f.name, text)} ignored: {why}{f.requirement()}"


@dataclass
class Decoded:
    """What a query string says: a valid config, the view settings, and the warnings to show."""

    preset: str
    config: ExperimentConfig
    view: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _first(value) -> str:
    if isinstance(value, (list, tuple)):
        return str(value[-1]) if value else ""
    return str(value)


def decode(params: dict, catalog=None) -> Decoded:
    """Parse query parameters (name -> str or list of str) into a config; never raises. Every warning names
    the field as typed and says in plain words which values it allows.

    A link to your own data (``dataset=csv&data=HASH``) is resolved in ``catalog`` (the server's data store by
    default, see owndata.Store.info); data it does not have is dropped with a warning naming the file to upload.
    """
    warnings: list[str] = []
    preset = _first(params.get("preset", C.DEFAULT_PRESET))
    if preset not in C.PRESETS:
        warnings.append(f"{_as_typed('preset', preset)} ignored: the preset must be one of {_or(C.PRESETS)}; "
                        f"{C.DEFAULT_PRESET} is used instead")
        preset = C.DEFAULT_PRESET
    changes: dict[str, Any] = {}
    view: dict[str, Any] = {}
    for name, raw in params.items():
        if name == "preset":
            continue
        text = _first(raw)
        f = BY_NAME.get(name)
        if f is None:
            warnings.append(f"{_as_typed(name, text)} ignored: a link has no setting called {_typed(name)}; "
                            f"its settings are preset, {_or(BY_NAME)}")
            continue
        if len(text) > MAX_VALUE_LEN:
            warnings.append(f"{name} ignored: its value is longer than {MAX_VALUE_LEN} characters; "
                            f"{f.requirement()}")
            continue
        try:
            value = f.parse(text)
        except Exception as exc:  # noqa: BLE001 - any refusal: the warning uses our words, never the exception's
            warnings.append(refusal(f, text, exc))
            continue
        if f.target.startswith("view:"):
            view[f.target[5:]] = value
        else:
            changes[f.target] = value
    base = C.PRESETS[preset].config
    _own_data(changes, base, preset, catalog, warnings)
    try:
        config = base.replace(**changes)
    except ValueError as exc:  # fields valid one by one but not together; config says why in words
        why = str(exc).removeprefix("invalid experiment config: ")
        warnings.append(f"the link's settings do not fit together, so the {preset} preset is used as it is: {why}")
        config = base
    _fit_view(view, config, warnings)
    return Decoded(preset, config, view, warnings)


def _own_data(changes: dict[str, Any], base: ExperimentConfig, preset: str, catalog, warnings: list[str]) -> None:
    """Resolve a link's own data into the config's data fields (task, inputs, name), or drop it with one warning
    that says why and, for data this server lacks, which file to upload."""
    own: tuple[str, ...] = ("dataset", "data", "target", "data_name")
    given = [name for name in ("data", "target", "data_name") if name in changes]
    if changes.get("dataset", base.dataset) != C.OWN_DATA:
        if given:
            names = _or(f.name for f in FIELDS if f.target in given)
            warnings.append(f"{names} ignored: {'they name' if len(given) > 1 else 'it names'} your own data, "
                            f"used only with dataset={C.OWN_DATA}")
            for name in given:
                changes.pop(name)
        return
    meanwhile = f"the {preset} preset's own data ({base.dataset}) is used meanwhile"
    h = changes.get("data")
    if h is None:
        warnings.append(f"dataset={C.OWN_DATA} ignored: the link does not say which file (data=…); upload a CSV "
                        f"file under Your own data in the sidebar; {meanwhile}")
        for k in own:
            changes.pop(k, None)
        return
    catalog = catalog if catalog is not None else owndata.default_store()
    name = changes.get("data_name") or catalog.name_of(h)
    try:
        info = catalog.info(h, changes.get("target", ""))
    except owndata.MissingData:
        # the whole name (printable and short by the dataname rule, or as the store keeps it): the file to look for
        upload = f"upload {name}" if name else "upload the CSV file the link was made with"
        warnings.append(f"data={h} ignored: this server does not have that data file; {upload} under Your own "
                        f"data in the sidebar to train on it; {meanwhile}")
        for k in own:
            changes.pop(k, None)
        return
    except owndata.CsvError as exc:
        warnings.append(f"data={h} ignored: {exc}; {meanwhile}")
        for k in own:
            changes.pop(k, None)
        return
    changes.update(owndata.config_changes(h, changes.get("target", ""), info))
    if name:
        changes["data_name"] = name


def _fit_view(view: dict[str, Any], config: ExperimentConfig, warnings: list[str]) -> None:
    """Drop a ``layer`` or ``unit`` that the link's own network does not have, with a warning that says what
    it has (the field's parser only knows the largest network any link may ask for)."""
    layers = len(config.widths)
    kind = "conv layer" if config.architecture == "conv" else "hidden layer"
    if view.get("layer", 0) >= layers:
        names = "layer=0" if layers == 1 else f"layer=0 to layer={layers - 1}"
        warnings.append(f"layer={view.pop('layer')} ignored: this network has {layers} {kind}"
                        f"{'s' if layers > 1 else ''} ({names})")
    layer = view.get("layer", layers - 1)  # the page's default layer is the last
    tracked = config.tracked_units(layer)
    if view.get("unit", -1) not in (-1, *tracked):
        noun = "channel" if config.architecture == "conv" else "unit"
        noun = config.watched.noun if config.watched is not None else noun
        warnings.append(f"unit={view.pop('unit')} ignored: the page follows {noun}s {', '.join(map(str, tracked))} "
                        f"of layer={layer} one by one, or all of them pooled (unit=-1)")


def encode(preset: str, config: ExperimentConfig, view: dict | None = None) -> dict[str, str]:
    """The query parameters of a state: preset, every config field of FIELDS, and the view settings."""
    out = {"preset": preset}
    for f in CONFIG_FIELDS:
        value = getattr(config, f.target)
        if f.name not in OWN_DATA_FIELDS or value:
            out[f.name] = f.show(value)
    for key, value in (view or {}).items():
        known = BY_NAME.get(key)
        if known is not None and value is not None:
            out[key] = known.show(value)
    return out
