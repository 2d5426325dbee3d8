"""torchvision beside a build of torch it was not built for.

PyPI's torchvision 0.28.0 is built against the CUDA build of torch 2.13.0. Beside the CPU build, its compiled
operators (nms, roi_align, ...) do not load, which torchvision tolerates with a warning; but registering their fake
kernels then aborts ``import torchvision``, and with it every package that imports it when installed (torchmetrics,
and so Lightning). Models such as ResNet-18 need none of those operators, so in exactly that case the registration is
skipped and torchvision imports without its compiled operators.
"""

from __future__ import annotations

import importlib.util
import sys
import types

_REGISTRATIONS = "torchvision._meta_registrations"


def import_torchvision() -> types.ModuleType:
    """``import torchvision``, without its compiled operators where they cannot load (see the module's docstring)."""
    try:
        import torchvision
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        sys.modules[_REGISTRATIONS] = types.ModuleType(_REGISTRATIONS)
        import torchvision
    return torchvision


def torchvision_importable() -> None:
    """Make sure that an installed torchvision imports, so that packages importing it (Lightning) do; nothing
    happens without torchvision."""
    if "torchvision" not in sys.modules and importlib.util.find_spec("torchvision") is not None:
        import_torchvision()
