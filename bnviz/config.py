"""Experiment configuration, the registries of choices, and the presets.

One frozen dataclass describes a run completely (seed included), so a run is a pure function of its
config: the same config trains the same weights bit for bit, and the registry can share one run among
every viewer of a link. Each registry (datasets, activations, variants, initializations, optimizers,
presets) is a dict that feeds the widgets, the URL codec and the builders alike, so a new choice is one
entry.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

# --- registries: name -> one-line description (the code that implements each lives beside its use) ---

DATASETS = {
    "digits": "scikit-learn's 8x8 handwritten digits, 64 inputs in [0, 1], 10 classes (the MNIST stand-in)",
    "moons": "two interleaving half circles, 2 inputs, 2 classes",
    "circles": "a circle inside a ring, 2 inputs, 2 classes",
    "spirals": "two interleaved spirals, 2 inputs, 2 classes",
    "xor": "four Gaussian clusters in an XOR layout, 2 inputs, 2 classes",
    "blobs": "four Gaussian blobs, 2 inputs, 4 classes",
    "features": "synthetic inputs whose features follow a chosen distribution (see INPUT_DISTS), "
    "labels from a fixed random teacher network",
    "regression": "synthetic inputs as 'features', and 10 real-valued targets: a fixed random linear map of the "
    "inputs plus noise of std 0.1 (a regression: squared-error loss, scored by R², the fraction of variance "
    "explained)",
    "csv": "your own data: a CSV file of numeric feature columns and one target column, uploaded in the sidebar "
    "(or record --data); a classification when the target has at most 20 distinct whole-number or text values, "
    "else a regression",
}
REGRESSION_TARGETS, REGRESSION_NOISE = 10, 0.1  # the regression's targets and their noise std (best R² ~0.99)
SYNTHETIC_INPUTS = ("features", "regression")  # datasets whose inputs follow input_dist, n_features wide
REGRESSION_DATASETS = ("regression",)  # the rest are classifications (cross-entropy loss, scored by accuracy)
OWN_DATA = "csv"  # the dataset read from an uploaded file; its task and width come from the file (data_task)
TASKS = ("classification", "regression")

INPUT_DISTS = {
    "gaussian": "standard normal features",
    "uniform": "uniform on [-sqrt(3), sqrt(3)] (unit variance, light tails)",
    "exponential": "exponential(1) minus 1 (skewed)",
    "bimodal": "a +/-1 coin plus N(0, 0.25^2) noise (two modes)",
    "student-t": "Student's t with 3 degrees of freedom (heavy tails)",
    "sparse": "ReLU of a standard normal (half exact zeros, like post-ReLU activations)",
    "correlated": "one shared bimodal factor plus small independent noise (features far from independent)",
}

ACTIVATIONS = {
    "sigmoid": "logistic sigmoid, as in Ioffe & Szegedy's Figure 1",
    "tanh": "hyperbolic tangent",
    "relu": "rectified linear unit",
    "gelu": "Gaussian error linear unit (exact erf form)",
    "identity": "no nonlinearity (a deep linear network)",
}

VARIANTS = {
    "none": "no normalization: the baseline",
    "bn": "batch normalization with learned scale gamma and shift beta (Ioffe & Szegedy, 2015)",
    "bn_noaffine": "batch normalization with gamma = 1 and beta = 0 frozen",
    "bn_noisy": "batch normalization followed by a random per-unit scale and shift redrawn every step "
    "(Santurkar et al., 2018)",
    "ln": "layer normalization: statistics over the units of one example instead of over the batch",
    "bn_gauss": "batch normalization that also makes each unit's x_hat exactly Gaussian over the batch: each "
    "value's rank picks that quantile of the standard normal",
    "bn_uniform": "batch normalization that also makes each unit's x_hat exactly uniform over the batch "
    "(rank to quantile, on [-sqrt(3), sqrt(3)])",
    "bn_laplace": "batch normalization that also makes each unit's x_hat exactly Laplace over the batch "
    "(rank to quantile: heavy tails, a sharp peak)",
}

ARCHITECTURES = {
    "mlp": "fully connected hidden layers: a unit is a neuron",
    "conv": "3x3 convolutions on square images (the digits as 8x8), then global average pooling: a unit is a "
            "channel, whose values over examples and positions batch norm normalizes together",
}
PLACEMENTS = {
    "before": "normalize Wu + b, then apply the activation (as in the paper)",
    "after": "apply the activation, then normalize its output",
}

INITS = {
    "pytorch": "PyTorch's default for Linear and Conv2d: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)), "
    "weight variance 1/(3 fan_in)",
    "xavier_normal": "Glorot & Bengio (2010): weights N(0, 2/(fan_in + fan_out)), biases 0",
    "xavier_uniform": "Glorot & Bengio (2010): weights U(-a, a) with a = sqrt(6/(fan_in + fan_out)), variance "
    "2/(fan_in + fan_out), biases 0",
    "orthogonal": "Saxe et al. (2014): weights a random orthogonal matrix (rows or columns orthonormal), "
    "biases 0: a square linear layer keeps the length of its input",
    "he_normal": "He et al. (2015): weights N(0, 2/fan_in), biases 0 (made for ReLU, which halves the variance)",
}

OPTIMIZERS = {
    "sgd": "plain stochastic gradient descent (as in the paper's Figure 1)",
    "momentum": "SGD with momentum 0.9",
    "adam": "Adam with default betas",
}

VIEWS = {
    "train": "normalize the probe set with its own batch statistics (what training sees)",
    "eval": "normalize with BN's running statistics (what inference sees)",
}

STAGES = {
    "x": "Wu + b: the linear output, what normalization receives when placed before the activation",
    "x_hat": "the normalized value: per-unit mean 0 and variance 1 over the batch",
    "y": "gamma * x_hat + beta: what the normalization layer hands on",
    "a": "the activation's output",
}

# Hard limits that keep one visitor from occupying the whole server (see also the URL codec).
LIMITS = {
    "steps": (1, 1_000_000),
    "batch": (1, 4096),
    "lr": (1e-6, 1e3),
    "width": (1, 1024),
    "depth": (1, 25),  # 25: Santurkar et al.'s deep linear network
    "hidden_units": (1, 8192),  # all layers' widths together: 8 x 1024, whatever the depth
    "seed": (0, 2**31 - 1),
    "snapshot_every": (1, 100_000),
    "probe_size": (8, 4096),
    "n_features": (1, 256),
}


CONV_PROBE_EXAMPLES = 64  # see ExperimentConfig.probe_examples
HISTORY_CAP = 256  # snapshots a page keeps of a run (evenly thinned beyond, + the latest): bounded memory
TABLE_CAP = 4096  # snapshots the record command keeps (evenly thinned beyond, + the final step)
DATA_HASH_LEN = 16  # hex digits of a CSV file's sha256 kept in links and the data store (64 bits)
BN_EPS = 1e-5  # PyTorch's default eps of BatchNorm1d and LayerNorm: the model, the numpy probe and clt use it


@dataclass(frozen=True)
class WatchedModel:
    """A PyTorch model that bnviz watched (``bnviz.watch``) rather than built: its normalization layers, in the
    order the model runs them. Each layer is one entry of every tuple."""

    model: str  # the model's class name, e.g. "ResNet"
    names: tuple[str, ...]  # each layer's module path, e.g. "layer1.0.bn1"
    kinds: tuple[str, ...]  # its module's class: "BatchNorm2d", "SyncBatchNorm", "LayerNorm", "GroupNorm", ...
    fan_ins: tuple[int, ...]  # inputs one unit of the module feeding it sums (0: not known)
    values: tuple[int, ...]  # values per unit and snapshot (examples x positions, at most WATCH_VALUES)
    activations: tuple[str, ...]  # class of the activation module right after it ("" where none follows)

    def __post_init__(self) -> None:
        n = len(self.names)
        if n == 0 or any(len(t) != n for t in (self.kinds, self.fan_ins, self.values, self.activations)):
            raise ValueError("invalid watched model: names, kinds, fan_ins, values and activations must be "
                             "non-empty and equally long")

    @property
    def noun(self) -> str:
        """What a unit is called: a channel when every layer normalizes channels of images, else a unit."""
        return "channel" if all(k.endswith(("2d", "3d")) or k == "GroupNorm" for k in self.kinds) else "unit"


WATCH_VALUES = 4096  # values per unit a watched layer keeps per snapshot (Shapiro-Wilk's range; a fixed sample)


def split_variant(token: str) -> tuple[str, str | None]:
    """Split a variant token such as ``bn`` or ``bn@after`` into (kind, placement or None)."""
    kind, _, placement = token.partition("@")
    return kind, (placement or None)


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines a run; equal configs give bit-identical runs on the CPU."""

    dataset: str = "digits"  # the paper used MNIST; digits ships inside scikit-learn, no download
    input_dist: str = "gaussian"  # feature distribution, used only by the "features" dataset
    n_features: int = 16  # input width of the "features" dataset (the fan-in of the first layer)
    architecture: str = "mlp"  # "conv": widths are channels of 3x3 conv layers (ARCHITECTURES)
    widths: tuple[int, ...] = (100, 100, 100)  # hidden layers, as in the paper's Figure 1
    activation: str = "sigmoid"  # the paper's Figure 1 network uses sigmoids
    variants: tuple[str, ...] = ("none", "bn")  # trained side by side; "bn@after" overrides placement
    placement: str = "before"  # default placement for variant tokens without "@..."
    optimizer: str = "sgd"
    init: str = "pytorch"  # initial weights of every twin (INITS); PyTorch's own rule unless a preset says
    lr: float = 0.5  # the paper's Figure 1 setting for sigmoids without BN
    batch: int = 60  # the paper's Figure 1 mini-batch size
    steps: int = 5000
    seed: int = 0  # initial weights, data split, batch order and noise all derive from it
    snapshot_every: int = 25  # 5,000 steps -> 201 snapshots (step 0 included)
    probe_size: int = 512  # fixed training examples pushed through the network at each snapshot
    view: str = "train"  # probe with the probe set's own batch statistics, or "eval": running statistics
    units: tuple[int, ...] = (0, 1, 2, 3, 4)  # units tracked one by one, besides all units pooled
    ics_every: int = 250  # gradient-based covariate shift costs L extra passes: a rarer cadence
    noise_shift: float = 0.5  # bn_noisy: per-unit shift ~ U(-noise_shift, noise_shift), every step
    noise_scale: float = 1.5  # bn_noisy: per-unit scale log-uniform in [1/noise_scale, noise_scale]
    # dataset "csv" only: the file's content hash in the data store and its target column ("" = the default one).
    data: str = ""
    target: str = ""
    # Resolved from the file when the config is made (the link does not carry them): its task and input width.
    data_task: str = ""
    data_inputs: int = 0
    data_name: str = field(default="", compare=False)  # the uploaded file's name, for messages and links
    # A model bnviz watched instead of trained (bnviz.watch): its layers; widths are their units.
    watched: WatchedModel | None = None

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError("invalid experiment config: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """Human-readable reasons this config is invalid (empty when valid)."""
        out: list[str] = []

        def choice(name: str, value: str, registry: dict) -> None:
            if value not in registry:
                out.append(f"{name}={value!r} is not one of {', '.join(registry)}")

        def bounded(name: str, value: float, key: str | None = None) -> None:
            lo, hi = LIMITS[key or name]
            if not lo <= value <= hi:
                out.append(f"{name}={value!r} is outside [{lo}, {hi}]")

        choice("dataset", self.dataset, DATASETS)
        choice("architecture", self.architecture, ARCHITECTURES)
        self._own_data_problems(out)
        width = self.data_inputs if self.dataset == OWN_DATA else self.n_features
        if self.architecture == "conv" and not (self.dataset == "digits" or (
                self.dataset in (*SYNTHETIC_INPUTS, OWN_DATA) and isinstance(width, int)
                and math.isqrt(max(width, 0)) ** 2 == width)):
            out.append(f"architecture conv needs square images: the digits, or synthetic inputs or a CSV with a "
                       f"square number of inputs (not {self.dataset} with {width})")
        choice("input_dist", self.input_dist, INPUT_DISTS)
        choice("activation", self.activation, ACTIVATIONS)
        choice("placement", self.placement, PLACEMENTS)
        choice("optimizer", self.optimizer, OPTIMIZERS)
        choice("init", self.init, INITS)
        choice("view", self.view, VIEWS)
        for name in ("steps", "batch", "seed", "snapshot_every", "probe_size", "n_features"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                out.append(f"{name}={value!r} is not an integer")
            else:
                bounded(name, value)
        if not (isinstance(self.lr, (int, float)) and self.lr == self.lr):
            out.append(f"lr={self.lr!r} is not a number")
        else:
            bounded("lr", self.lr)
        if self.watched is not None:  # nothing trains here, so the training limits do not apply
            if len(self.widths) != len(self.watched.names) or any(
                    not isinstance(w, int) or w < 1 for w in self.widths):
                out.append(f"a watched model needs one positive width per layer ({len(self.watched.names)})")
        else:
            self._size_problems(out)
        if not self.variants:
            out.append("variants is empty; name at least one of " + ", ".join(VARIANTS))
        if len(set(self.variants)) != len(self.variants):
            out.append(f"variants {self.variants} repeat a name")
        for token in self.variants:
            kind, placement = split_variant(token)
            if kind not in VARIANTS or (placement is not None and placement not in PLACEMENTS):
                out.append(f"variant {token!r} is not one of {', '.join(VARIANTS)} (optionally @before/@after)")
        if any((not isinstance(u, int)) or u < 0 for u in self.units):
            out.append(f"units {self.units} must be non-negative integers")
        if not isinstance(self.ics_every, int) or self.ics_every < 0:
            out.append(f"ics_every={self.ics_every!r} must be a non-negative integer (0 turns it off)")
        if not self.noise_shift >= 0 or not self.noise_scale >= 1:
            out.append("bn_noisy needs noise_shift >= 0 and noise_scale >= 1")
        return out

    def _size_problems(self, out: list[str]) -> None:
        if not 1 <= len(self.widths) <= LIMITS["depth"][1]:
            out.append(f"widths has {len(self.widths)} layers; 1 to {LIMITS['depth'][1]} allowed")
        for w in self.widths:
            if not isinstance(w, int) or not LIMITS["width"][0] <= w <= LIMITS["width"][1]:
                out.append(f"width {w!r} is outside [1, {LIMITS['width'][1]}]")
        if all(isinstance(w, int) for w in self.widths) and sum(self.widths) > LIMITS["hidden_units"][1]:
            out.append(f"widths add up to {sum(self.widths)} units; at most {LIMITS['hidden_units'][1]} in all")

    def _own_data_problems(self, out: list[str]) -> None:
        """The data fields belong to dataset csv alone, which needs them resolved from its file."""
        fields = {"data": self.data, "target": self.target, "data_task": self.data_task,
                  "data_inputs": self.data_inputs, "data_name": self.data_name}
        if self.dataset != OWN_DATA:
            if any(fields.values()):
                out.append(f"data, target and data_* are set only for dataset {OWN_DATA}, not {self.dataset}")
            return
        if not (isinstance(self.data, str) and len(self.data) == DATA_HASH_LEN
                and all(c in "0123456789abcdef" for c in self.data)):
            out.append(f"dataset {OWN_DATA} needs a file: data must be its {DATA_HASH_LEN} hex-digit content hash "
                       f"(upload a CSV file)")
        if self.data_task not in TASKS or not isinstance(self.data_inputs, int) or not (
                LIMITS["n_features"][0] <= self.data_inputs <= LIMITS["n_features"][1]):
            out.append(f"dataset {OWN_DATA} needs its file read first (its task and number of inputs)")

    def replace(self, **changes) -> ExperimentConfig:
        """A copy with some fields changed (validated like any config)."""
        return dataclasses.replace(self, **changes)

    def placement_of(self, token: str) -> str:
        """Where variant ``token`` puts its normalization: its own ``@...`` suffix or the default."""
        return split_variant(token)[1] or self.placement

    @property
    def task(self) -> str:
        """``regression`` (squared error, scored by R²) or ``classification`` (cross-entropy, accuracy)."""
        if self.dataset == OWN_DATA:
            return self.data_task
        return "regression" if self.dataset in REGRESSION_DATASETS else "classification"

    @property
    def n_inputs(self) -> int:
        """Input width: the digits' 64 pixels, n_features synthetic inputs, or the 2-D sets' 2 coordinates."""
        if self.dataset == OWN_DATA:
            return self.data_inputs
        return 64 if self.dataset == "digits" else self.n_features if self.dataset in SYNTHETIC_INPUTS else 2

    @property
    def series_length(self) -> int:
        """Values in one unit's series at a snapshot: a probe example each, times every position of the image
        for a conv channel."""
        return self.probe_examples * (self.n_inputs if self.architecture == "conv" else 1)

    @property
    def probe_examples(self) -> int:
        """Examples in the probe set. A conv channel's series holds every position of every example, so a
        conv network probes at most CONV_PROBE_EXAMPLES (64 x 64 positions = 4,096 values a channel, the
        most a tracked unit's series may hold)."""
        return min(self.probe_size, CONV_PROBE_EXAMPLES) if self.architecture == "conv" else self.probe_size

    def series_values(self, layer: int) -> int:
        """Values in one unit's series of hidden layer ``layer`` at a snapshot (a watched layer's own count)."""
        return self.watched.values[layer] if self.watched is not None else self.series_length

    def layer_name(self, layer: int) -> str:
        """How the page names hidden layer ``layer`` (0-based): "layer 2", or a watched module's path."""
        return self.watched.names[layer] if self.watched is not None else f"layer {layer + 1}"

    def tracked_units(self, layer: int) -> tuple[int, ...]:
        """The units followed one by one in hidden layer ``layer`` (those that exist in it)."""
        return tuple(u for u in self.units if u < self.widths[layer])


def config_to_json(cfg: ExperimentConfig) -> str:
    """The config as JSON: what a run folder of a watched model carries (it has no share link)."""
    return json.dumps(dataclasses.asdict(cfg), sort_keys=True)


def config_from_json(text: str) -> ExperimentConfig:
    """The config that ``config_to_json`` wrote; raises ValueError (with the reason) for anything else."""
    try:
        fields = json.loads(text)
        names = {f.name for f in dataclasses.fields(ExperimentConfig)}
        if not isinstance(fields, dict) or not set(fields) <= names:
            raise ValueError(f"unknown fields {sorted(set(fields) - names)[:5] if isinstance(fields, dict) else ''}")
        w = fields.get("watched")
        watched: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in (w or {}).items()}
        fields["watched"] = None if w is None else WatchedModel(**watched)
        for k, v in fields.items():
            if isinstance(v, list):
                fields[k] = tuple(v)
        return ExperimentConfig(**fields)
    except (TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a bnviz config: {exc}") from None


@dataclass(frozen=True)
class Preset:
    """A named configuration and the one sentence that says what it shows."""

    name: str
    config: ExperimentConfig
    shows: str


def _presets() -> dict[str, Preset]:
    base = ExperimentConfig()
    items = [
        Preset(
            "ioffe",
            base,
            "Figure 1 of Ioffe & Szegedy on the digits stand-in: 3x100 sigmoid layers, SGD lr 0.5, "
            "batch 60; the last layer's sigmoid input drifts without BN and holds still with it.",
        ),
        Preset(
            "santurkar",
            base.replace(variants=("none", "bn", "bn_noisy"), activation="relu", lr=0.1, steps=3000),
            "Santurkar et al.: BN with noise injected after it trains about as well as BN, although its "
            "distributions move every step - stability of distributions is not what helps.",
        ),
        Preset(
            "gamma-beta",
            base.replace(variants=("bn", "bn_noaffine"), steps=3000),
            "BN with and without learned gamma and beta: the affine step moves the distribution again, "
            "but slowly, and it never changes its shape.",
        ),
        Preset(
            "why-gaussian",
            base.replace(
                dataset="features", input_dist="bimodal", n_features=4, widths=(8, 64, 256),
                activation="relu", variants=("none", "bn"), lr=0.05, steps=2000,
            ),
            "Bimodal inputs: with 4 inputs Wu + b stays bimodal and BN keeps it so; with 64 and 256 inputs "
            "the central limit theorem makes it near-Gaussian - BN standardizes, it does not reshape.",
        ),
        Preset(
            "small-batch",
            base.replace(variants=("none", "bn", "ln"), batch=4, lr=0.1, steps=3000),
            "Batch of 4: BN's statistics come from 4 examples and get noisy; layer norm does not depend on "
            "the batch.",
        ),
        Preset(
            "placement",
            base.replace(variants=("none", "bn@before", "bn@after"), activation="relu", lr=0.1, steps=3000),
            "BN before vs after the ReLU: after it, the layer above receives standardized but still "
            "half-rectified (skewed) inputs.",
        ),
        Preset(
            "ioffe-conv",
            base.replace(architecture="conv", widths=(16, 16, 16), steps=3000, probe_size=64),
            "Figure 1 in a small conv net: the digits as 8x8 images, 3 conv layers of 16 sigmoid channels, SGD "
            "lr 0.5, batch 60, no norm vs BN (BatchNorm2d: a channel over examples and positions).",
        ),
        Preset(
            "santurkar-conv",
            base.replace(architecture="conv", widths=(16, 32, 32), activation="relu", lr=0.1, steps=3000,
                         variants=("none", "bn", "bn_noisy"), probe_size=64),
            "Santurkar et al.'s VGG setting scaled to the digits: 3 conv blocks of ReLU channels, no norm, BN "
            "and noisy BN (a random shift and scale per channel, redrawn every step).",
        ),
        Preset(
            "santurkar-dln",
            base.replace(dataset="regression", n_features=16, widths=(16,) * 25, activation="identity", lr=0.1,
                         steps=3000, variants=("none", "bn", "bn_noisy"), init="orthogonal"),
            "Santurkar et al.'s deep linear network: 25 linear layers of 16 units from orthogonal weights (the "
            "plain network learns too), targets a noisy linear map of Gaussian inputs; no norm, BN, noisy BN.",
        ),
        Preset(
            "shapes",
            base.replace(dataset="features", input_dist="bimodal", n_features=8, widths=(32, 32, 32),
                         activation="relu", lr=0.1, steps=3000,
                         variants=("bn", "bn_gauss", "bn_uniform", "bn_laplace")),
            "Would another shape serve better? On bimodal inputs, BN (which keeps its input's shape) beside three "
            "normalizations that force each unit into a Gaussian, a uniform or a Laplace shape, from the same start.",
        ),
        Preset(
            "shapes-digits",
            base.replace(steps=3000, variants=("bn", "bn_gauss", "bn_uniform", "bn_laplace")),
            "The same four normalizations in Figure 1's network on the digits: BN, and BN's standardization "
            "forced into a Gaussian, a uniform or a Laplace shape.",
        ),
        Preset(
            "lr-range",
            base.replace(activation="relu", lr=0.1, steps=1000),
            "How wide a range of learning rates trains well? Figure 1's 3x100 network with ReLU, 1,000 steps (a few "
            "seconds a run), no norm vs BN: sweep the learning rate from 0.001 to 10 on the Learning rates panel.",
        ),
    ]
    return {p.name: p for p in items}


PRESETS: dict[str, Preset] = _presets()
DEFAULT_PRESET = "ioffe"

# The page's panels, in order; lessons and the evidence board link to them by these names.
PANELS = {
    "training": "Training",
    "layer": "Inside a layer",
    "over-time": "Over training",
    "gamma-beta": "γ and β",
    "normality": "Normality",
    "stability": "Stability",
    "why-gaussian": "Why Gaussian?",
    "lr-range": "Learning rates",
    "evidence": "Evidence board",
}
