"""The statistics API (contract 2 in docs/design.md): every public name of ``bnviz.stats``."""

from bnviz.stats.gaussian import (
    ACTIVATION_GRADIENTS,
    PERCENTILES,
    SHAPIRO_MAX_N,
    UNIT_STATS,
    Histogram,
    Normality,
    StableBins,
    align,
    bin_index,
    coarsen,
    describe,
    describe_columns,
    describe_sorted,
    gradient_shift,
    histogram,
    histogram_sorted,
    nice_width,
    normality,
    percentiles,
    saturation,
    wasserstein1_columns,
)
from bnviz.stats.gaussian import (
    _bin_index_scalar as _bin_index_scalar,
)
from bnviz.stats.gaussian import (
    _shapiro_sorted as _shapiro_sorted,
)

__all__ = [
    "ACTIVATION_GRADIENTS", "PERCENTILES", "SHAPIRO_MAX_N", "UNIT_STATS", "Histogram", "Normality", "StableBins",
    "align", "bin_index", "coarsen", "describe", "describe_columns", "describe_sorted", "gradient_shift",
    "histogram", "histogram_sorted", "nice_width", "normality", "percentiles", "saturation", "wasserstein1_columns",
]
