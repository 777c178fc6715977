"""mematte_d2: MEMatte (AAAI 2025) as a detectron2-style framework."""

from ._deps import check_dependencies

check_dependencies()

from .data import builtin as _builtin  # noqa: E402, F401  registers the builtin data sets

__version__ = "0.1.0"
