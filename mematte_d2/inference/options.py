"""Checks of the per-call prediction options, shared by MattingPredictor and the predict command.

Each returns the value when it is valid and otherwise raises a TypeError / ValueError saying
what was expected and what was given, so the command line can refuse a bad option before it
builds a model and the Python API gives the same message.

The token budget's checks are the model's own: ``mematte_d2.modeling.routing``.
"""

import numbers

from mematte_d2.inference.memory import format_bytes, parse_memory_size
from mematte_d2.modeling.routing import check_max_tokens

__all__ = [
    "MAX_BAND_RADIUS",
    "MAX_TILE_SIZE",
    "MAX_TOKEN_CAP",
    "MIN_MEMORY_BUDGET",
    "MIN_TILE_SIZE",
    "TILE_STRIDE",
    "check_band_radius",
    "check_max_memory",
    "check_max_pixels",
    "check_tile_size",
    "check_token_cap",
]

# Decoder tiles are cut on the encoder's 16-pixel patch grid; the released configs decode each
# tile with 64 pixels of context, which a smaller tile cannot hold. A tile as large as the
# longest side of the default pixel limit already decodes any readable image in one piece.
TILE_STRIDE = 16
MIN_TILE_SIZE = 64
MAX_TILE_SIZE = 16384
# Tokens (16x16 patches) of the largest image OpenCV decodes (its CV_IO_MAX_IMAGE_PIXELS, 2^30
# pixels): a larger cap means no cap, and very large ones overflow the routing's index tensors.
MAX_TOKEN_CAP = (1 << 30) // (16 * 16)
# Below this no model runs: the interpreter and torch alone hold more.
MIN_MEMORY_BUDGET = 64 << 20
# Band half-widths above this make OpenCV build structuring elements of gigabytes.
MAX_BAND_RADIUS = 1024


def check_tile_size(value) -> int | None:
    """tile_size: None (the model's) or an int >= 0 (decoder tile in pixels, 0 = whole image)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"tile_size must be an int >= 0 or None, got {value!r}")
    if value < 0:
        raise ValueError(f"tile_size must be >= 0 (0 = whole image), got {value}")
    if value and (value % TILE_STRIDE or not MIN_TILE_SIZE <= value <= MAX_TILE_SIZE):
        raise ValueError(
            f"tile_size must be 0 (whole image) or a multiple of {TILE_STRIDE} in "
            f"[{MIN_TILE_SIZE}, {MAX_TILE_SIZE}], got {value}"
        )
    return int(value)


def check_token_cap(value) -> int | None:
    """max_tokens as a user option: the model's check, and at most `MAX_TOKEN_CAP`."""
    value = check_max_tokens(value)
    if value is not None and value > MAX_TOKEN_CAP:
        raise ValueError(
            f"max_tokens must be at most {MAX_TOKEN_CAP} (the tokens of the largest readable "
            f"image), got {value}"
        )
    return value


def check_max_memory(value: str | int) -> str | int:
    """A memory budget ("8GB", bytes or "auto"): the parsed spec, at least `MIN_MEMORY_BUDGET`."""
    spec = parse_memory_size(value)
    if spec != "auto" and spec < MIN_MEMORY_BUDGET:
        raise ValueError(
            f"memory budget {value!r} is below the minimum of {format_bytes(MIN_MEMORY_BUDGET)}"
        )
    return spec


def check_band_radius(value, name: str = "radius") -> int:
    """A trimap band half-width in pixels: an int in [0, `MAX_BAND_RADIUS`]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative number of pixels, got {value!r}")
    if value > MAX_BAND_RADIUS:
        raise ValueError(f"{name} must be at most {MAX_BAND_RADIUS} pixels, got {value}")
    return int(value)


def check_max_pixels(value) -> int:
    """max_pixels: an int >= 1, the largest image (width x height) read."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"max_pixels must be an int >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"max_pixels must be >= 1, got {value}")
    return int(value)
