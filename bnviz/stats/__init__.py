"""The statistics API (contract 2 in docs/design.md): every public name of ``bnviz.stats``, one module per idea.

``gaussian`` (how Gaussian a sample is: normality, describe*, percentiles), ``histograms`` (stable bins),
``drift`` (Wasserstein-1 between snapshots), ``activations`` (each activation, its derivative, saturation)
and ``shift`` (gradient shift). Everything is pure numpy, with scipy imported on first use, and runs in the
statistics worker process. Inputs are converted to float64 (float32 probes are widened exactly) and
non-finite values are rejected with a ``ValueError`` that says what was received.
"""

from bnviz.stats.activations import ACTIVATION_GRADIENTS, saturation
from bnviz.stats.drift import wasserstein1_columns
from bnviz.stats.gaussian import (
    PERCENTILES,
    SHAPIRO_MAX_N,
    UNIT_STATS,
    Normality,
    describe,
    describe_columns,
    describe_sorted,
    normality,
    percentiles,
)
from bnviz.stats.gaussian import (
    _shapiro_sorted as _shapiro_sorted,  # the worker's import test calls it directly
)
from bnviz.stats.histograms import (
    Histogram,
    StableBins,
    align,
    bin_index,
    coarsen,
    histogram,
    histogram_sorted,
    nice_width,
)
from bnviz.stats.shift import gradient_shift

__all__ = [
    "ACTIVATION_GRADIENTS", "PERCENTILES", "SHAPIRO_MAX_N", "UNIT_STATS", "Histogram", "Normality", "StableBins",
    "align", "bin_index", "coarsen", "describe", "describe_columns", "describe_sorted", "gradient_shift",
    "histogram", "histogram_sorted", "nice_width", "normality", "percentiles", "saturation", "wasserstein1_columns",
]
