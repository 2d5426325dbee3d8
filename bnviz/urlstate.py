"""The share-link codec: one declarative table of query-string fields, parsed and written by one loop.

A link holds the whole state in names a teacher can edit by hand, e.g.
``?preset=ioffe&seed=0&steps=5000&lr=0.5&batch=60&activation=sigmoid&widths=100,100,100&variants=none,bn``.
Decoding starts from the named preset and applies every field it understands; an unknown name or a bad
value is ignored and reported in a warning that names it, so a page always opens (TensorFlow
Playground's state.ts works the same way).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from bnviz import config as C
from bnviz.config import ExperimentConfig

MAX_VALUE_LEN = 200  # longer values are refused before parsing: nothing huge is ever parsed


@dataclass(frozen=True)
class Field:
    """One query-string field: its name, the config attribute or view key it sets, and how to parse it."""

    name: str
    target: str  # ExperimentConfig attribute, or "view:<key>"
    parse: Callable[[str], Any]
    show: Callable[[Any], str] = str


def _int(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text.strip())
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return value
    return parse


def _float(lo: float, hi: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text.strip())
        if not lo <= value <= hi:  # also refuses nan
            raise ValueError(f"must be between {lo:g} and {hi:g}")
        return value
    return parse


def _choice(registry: dict) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in registry:
            raise ValueError(f"must be one of {', '.join(registry)}")
        return text
    return parse


def _widths(text: str) -> tuple[int, ...]:
    lo, hi = C.LIMITS["width"]
    parts = [p for p in text.replace(" ", "").split(",") if p]
    if not 1 <= len(parts) <= C.LIMITS["depth"][1]:
        raise ValueError(f"needs 1 to {C.LIMITS['depth'][1]} comma-separated widths")
    return tuple(_int(lo, hi)(p) for p in parts)


def _variants(text: str) -> tuple[str, ...]:
    tokens = tuple(t for t in text.replace(" ", "").split(",") if t)
    for t in tokens:
        kind, placement = C.split_variant(t)
        if kind not in C.VARIANTS or (placement is not None and placement not in C.PLACEMENTS):
            raise ValueError(f"{t!r} is not a variant ({', '.join(C.VARIANTS)}, optionally @before/@after)")
    if not tokens or len(set(tokens)) != len(tokens):
        raise ValueError("needs one or more distinct variants")
    return tokens


def _flag(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on", ""):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be 1 or 0")


def _join(values) -> str:
    return ",".join(str(v) for v in values)


_L = C.LIMITS
FIELDS: tuple[Field, ...] = (
    Field("seed", "seed", _int(*_L["seed"])),
    Field("steps", "steps", _int(*_L["steps"])),
    Field("lr", "lr", _float(*_L["lr"]), lambda v: repr(float(v))),  # shortest exact form: 0.5, 1e-05
    Field("batch", "batch", _int(*_L["batch"])),
    Field("optimizer", "optimizer", _choice(C.OPTIMIZERS)),
    Field("activation", "activation", _choice(C.ACTIVATIONS)),
    Field("widths", "widths", _widths, _join),
    Field("variants", "variants", _variants, _join),
    Field("placement", "placement", _choice(C.PLACEMENTS)),
    Field("arch", "architecture", _choice(C.ARCHITECTURES)),
    Field("dataset", "dataset", _choice(C.DATASETS)),
    Field("dist", "input_dist", _choice(C.INPUT_DISTS)),
    Field("features", "n_features", _int(*_L["n_features"])),
    Field("view", "view", _choice(C.VIEWS)),
    Field("every", "snapshot_every", _int(*_L["snapshot_every"])),
    Field("panel", "view:panel", _choice(C.PANELS)),
    Field("layer", "view:layer", _int(0, _L["depth"][1] - 1)),
    Field("unit", "view:unit", _int(-1, _L["width"][1] - 1)),
    Field("lesson", "view:lesson", _int(1, 99)),
    Field("present", "view:present", _flag, lambda v: "1" if v else "0"),
)
BY_NAME = {f.name: f for f in FIELDS}
CONFIG_FIELDS = tuple(f for f in FIELDS if not f.target.startswith("view:"))


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


def decode(params: dict) -> Decoded:
    """Parse query parameters (name -> str or list of str) into a config; never raises."""
    warnings: list[str] = []
    preset = _first(params.get("preset", C.DEFAULT_PRESET))
    if preset not in C.PRESETS:
        warnings.append(f"preset={preset[:40]!r} is not one of {', '.join(C.PRESETS)}; using {C.DEFAULT_PRESET}")
        preset = C.DEFAULT_PRESET
    changes: dict[str, Any] = {}
    view: dict[str, Any] = {}
    for name, raw in params.items():
        if name == "preset":
            continue
        text = _first(raw)
        f = BY_NAME.get(name)
        if f is None:
            warnings.append(f"unknown setting {name[:40]!r} ignored")
            continue
        if len(text) > MAX_VALUE_LEN:
            warnings.append(f"{name} ignored: value longer than {MAX_VALUE_LEN} characters")
            continue
        try:
            value = f.parse(text)
        except (ValueError, TypeError) as exc:
            warnings.append(f"{name}={text[:40]!r} ignored: {exc}")
            continue
        if f.target.startswith("view:"):
            view[f.target[5:]] = value
        else:
            changes[f.target] = value
    base = C.PRESETS[preset].config
    try:
        config = base.replace(**changes)
    except ValueError as exc:  # fields valid one by one but not together
        warnings.append(f"settings ignored, using the {preset} preset: {exc}")
        config = base
    _fit_view(view, config, warnings)
    return Decoded(preset, config, view, warnings)


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
        warnings.append(f"unit={view.pop('unit')} ignored: the page follows {noun}s {', '.join(map(str, tracked))} "
                        f"of layer={layer} one by one, or all of them pooled (unit=-1)")


def encode(preset: str, config: ExperimentConfig, view: dict | None = None) -> dict[str, str]:
    """The query parameters of a state: preset, every config field of FIELDS, and the view settings."""
    out = {"preset": preset}
    for f in CONFIG_FIELDS:
        out[f.name] = f.show(getattr(config, f.target))
    for key, value in (view or {}).items():
        f = BY_NAME.get(key)
        if f is not None and value is not None:
            out[key] = f.show(value)
    return out
