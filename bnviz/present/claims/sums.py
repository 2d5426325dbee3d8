"""Claims judged by where a Gaussian comes from: C5 (a weighted sum of many inputs is Gaussian, the central
limit theorem), measured on random sums (:mod:`bnviz.measure.clt`) and on this run's own layers.

:func:`run_layers` is the one judgment of "is this run's layer input near-Gaussian"; C3 quotes it too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bnviz.config import INPUT_DISTS, SYNTHETIC_INPUTS, ExperimentConfig
from bnviz.measure import clt
from bnviz.present import summary
from bnviz.present.claims.record import Claim, Judged, RunView, not_measured
from bnviz.present.numbers import fmt

CLT_W, CLT_KL = 0.995, 0.02  # "Gaussian" at fan-in 256 (16,000 pooled values: a Gaussian reads W 0.9996, KL 0)
RUN_W, RUN_KL = 0.98, 0.05  # "near-Gaussian" for a run's layer: median over tracked units of the probe values
CLT_FAN_INS = clt.FAN_INS

_CLT_FAILS = {
    "student-t": "heavy tails: finite variance, but slow convergence",
    "correlated": "a shared factor never averages out",
    "sparse": "point masses at 0 survive few inputs",
}


@dataclass(frozen=True)
class C5Layer:
    layer: int  # 1-based
    w: float  # median over tracked units of x = Wu + b
    kl: float
    fan_in: int  # inputs each unit sums (fan_in; 0: not known, for a watched layer whose feeder is not a layer)
    name: str = ""  # a watched layer's module path (config.ExperimentConfig.layer_name); "" for "layer 2"

    @property
    def label(self) -> str:
        """How the board names the layer: ``layer 2``, or a watched module's path."""
        return self.name or f"layer {self.layer}"

    @property
    def gaussian(self) -> bool:
        """Near-Gaussian by C5's rule for a run's layer."""
        return self.w >= RUN_W and self.kl < RUN_KL


@dataclass(frozen=True)
class C5Numbers:
    share_gaussian: float
    gaussian: tuple[str, ...]  # the cases that reach the Gaussian
    not_gaussian: tuple[str, ...]
    run_dist: str  # the input distribution this run's data follows
    layers: tuple[C5Layer, ...] = ()  # this run's layers
    variant: str = ""  # whose layers: the first BN variant placed before the activation, else the first trained


def fan_in(cfg: ExperimentConfig, layer: int) -> int:
    """Inputs that one unit of hidden layer ``layer`` (0-based) sums: the previous layer's units, or for a
    conv layer its 3x3 window over every channel of the previous layer (one channel: the image); a watched
    layer's as bnviz.watch found it on the module that feeds it (0: not known)."""
    if cfg.watched is not None:
        return cfg.watched.fan_ins[layer]
    if cfg.architecture == "conv":
        return 9 * (1 if layer == 0 else cfg.widths[layer - 1])
    return cfg.n_inputs if layer == 0 else cfg.widths[layer - 1]


def run_layers(r: RunView) -> tuple[str | None, list[C5Layer]]:
    """x = Wu + b of every layer at the latest snapshot, median W and KL over tracked units, of the variant
    whose BN input C3 judges (a BN variant before the activation), else of the first trained variant."""
    token = (r.find(("bn", "bn_noaffine", "bn_noisy"), "before") or r.find(("none",))
             or next((t for t in r.tokens if r.latest(t) is not None), None))
    if token is None:
        return None, []
    snap = r.latest_snapshot(token)
    out = []
    for layer in range(len(snap.variants[token].layers)):
        w, kl = summary.layer_normality(snap, token, layer, "x")
        if not (math.isnan(w) or math.isnan(kl)):
            out.append(C5Layer(layer + 1, w, kl, fan_in(r.cfg, layer),
                               r.cfg.layer_name(layer) if r.cfg.watched is not None else ""))
    return token, out


def _range(values) -> str:
    lo, hi = min(values), max(values)
    return fmt(lo) if fmt(lo) == fmt(hi) else f"{fmt(lo)}–{fmt(hi)}"


def _fan_text(n: int) -> str:
    return str(n) if n > 0 else "not known"


def layers_text(layers: list[C5Layer]) -> str:
    """This run's layers in runs of equal verdict: 'layers 1–25: all near-Gaussian (median W 0.991–0.999)'."""
    groups: list[list[C5Layer]] = []
    for row in layers:
        if groups and groups[-1][-1].gaussian == row.gaussian and groups[-1][-1].layer == row.layer - 1:
            groups[-1].append(row)
        else:
            groups.append([row])
    parts = []
    for g in groups:
        said = "near-Gaussian" if g[0].gaussian else "not near-Gaussian"
        fans = list(dict.fromkeys(_fan_text(row.fan_in) for row in g))  # in layer order
        known = [row.fan_in for row in g if row.fan_in > 0]
        fans_text = ", ".join(fans) if len(fans) <= 3 else _range(known) if len(known) == len(g) else "various"
        if len(g) == 1:
            head = f"{g[0].label} (fan-in {fans[0]})"
        elif g[0].name:  # a watched model's layers: named by their module paths
            head = f"{len(g)} layers {g[0].name} to {g[-1].name} (fan-in {fans_text})"
        else:
            head = f"layers {g[0].layer}–{g[-1].layer} (fan-in {fans_text})"
            if len(layers) == len(g):  # one verdict for the whole network
                said = "all near-Gaussian" if g[0].gaussian else "none near-Gaussian"
        parts.append(f"{head}: {said}, median W {_range([row.w for row in g])}, KL {_range([row.kl for row in g])}")
    return "; ".join(parts)


def _c5(r: RunView) -> Judged:
    # The first layer's inputs: the chosen feature distribution, else "sparse" (ReLU-like, half exact zeros)
    # as the stand-in for digit pixels (mostly exact zeros) and for deeper layers' post-ReLU inputs. (The 2-D
    # toy sets have no good stand-in; their first layer, fan-in 2, shows up among this run's layers below.)
    run_dist = r.cfg.input_dist if r.cfg.dataset in SYNTHETIC_INPUTS else "sparse"
    items: list[tuple[str, bool]] = []
    parts = []
    for dist in INPUT_DISTS:
        res = clt.clt_experiment(dist, CLT_FAN_INS)
        w, kl = float(res.shapiro_w[-1]), float(res.kl[-1])
        items.append((dist, w >= CLT_W and kl < CLT_KL))
        parts.append(f"{dist}{'*' if dist == run_dist else ''} KL {fmt(float(res.kl[0]))} → {fmt(kl)}, W "
                     f"{fmt(float(res.shapiro_w[0]))} → {fmt(w)}")
    sp = clt.clt_experiment(run_dist, CLT_FAN_INS, weights="sparse")
    w, kl = float(sp.shapiro_w[-1]), float(sp.kl[-1])
    items.append((f"{run_dist} with weights on 2 inputs", w >= CLT_W and kl < CLT_KL))
    star = "this run's inputs" if r.cfg.dataset in SYNTHETIC_INPUTS else "stand-in for this run's inputs"
    figure = (f"standardized Wu + b, fan-in {CLT_FAN_INS[0]} → {CLT_FAN_INS[-1]}, random weights: "
              f"{'; '.join(parts)} (* {star}); weights on 2 inputs ({run_dist}) at fan-in {CLT_FAN_INS[-1]}: "
              f"KL {fmt(kl)}, W {fmt(w)}")
    token, layers = run_layers(r)
    own = [(f"{row.label} of this run", row.gaussian) for row in layers]
    items += own
    if token is not None and layers:  # layers come with the variant they were measured on
        step = r.latest_snapshot(token).step
        figure += f"; this run's x = Wu + b ({token}, step {step:,}): {layers_text(layers)}"
    good = [name for name, ok in items if ok]
    bad = [name for name, ok in items if not ok]
    share = len(good) / len(items)

    def why(name: str) -> str:
        if name in _CLT_FAILS:
            return f"{name} ({_CLT_FAILS[name]})"
        if "2 inputs" in name:
            return f"{name} (effectively 2 inputs: Lindeberg's condition fails)"
        return name

    layer_items = {name for name, _ in own}
    sums = [n for n in good if n not in layer_items], [n for n in bad if n not in layer_items]
    said = (f"Random sums reach the Gaussian for {', '.join(sums[0]) or 'nothing'}; not for "
            f"{', '.join(why(b) for b in sums[1]) or 'nothing'}.")
    if layers:
        said += f" This run's layers: {layers_text(layers)}."
    if not bad:
        verdict, detail = "supported", said + " Every sum of many inputs measured here is near-Gaussian."
    elif not good:
        verdict, detail = "refuted", said + " No sum measured here became Gaussian."
    else:
        verdict = "mixed"
        detail = (said + " The CLT needs many independent inputs with finite variance, none dominating "
                  "(Lindeberg); where that fails, so does the Gaussian.")
    return Judged(verdict, figure, detail, share,
                  C5Numbers(share, tuple(good), tuple(bad), run_dist, tuple(layers), token or ""))


def _judge_c5(r: RunView) -> Judged:
    if not r.snaps:
        return not_measured("no snapshot yet: start the run (the why-gaussian preset shows it best)")
    return _c5(r)


C5 = Claim(
    "C5", "A sum of many inputs is Gaussian (CLT)", "why-gaussian", "why-gaussian",
    needs=lambda c: True, needs_why="",
    thresholds={"clt_w": CLT_W, "clt_kl": CLT_KL, "run_w": RUN_W, "run_kl": RUN_KL},
    rule=f"a distribution counts as Gaussian at fan-in 256 if W >= {CLT_W} and KL < {CLT_KL} nats; a layer "
         f"of this run if its tracked units' median W >= {RUN_W} and median KL < {RUN_KL}; supported if all "
         "do, refuted if none does, mixed otherwise",
    meaning={
        "supported": ("So the near-Gaussian input comes from the linear layer itself, a sum of many inputs, before "
                      "any BN."),
        "refuted": "So in this run no sum became Gaussian: the central limit theorem does not explain a Gaussian here.",
        "mixed": ("So a Gaussian comes from the linear layer itself when many independent inputs with finite variance "
                  "add up, none dominating - not from BN. With few inputs, heavy tails, a shared factor or weights on "
                  "a few inputs the sum stays non-Gaussian, and there another distribution would describe it better."),
    },
    judge=_judge_c5,
)
