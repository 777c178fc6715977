"""Checks of the per-call prediction options, shared by MattingPredictor and the predict command.

Each returns the value when it is valid and otherwise raises a TypeError / ValueError saying
what was expected and what was given, so the command line can refuse a bad option before it
builds a model and the Python API gives the same message.

The token budget's checks are the model's own: ``mematte_d2.modeling.routing``.
"""

import numbers

__all__ = ["check_max_pixels", "check_tile_size"]


def check_tile_size(value) -> int | None:
    """tile_size: None (the model's) or an int >= 0 (decoder tile in pixels, 0 = whole image)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"tile_size must be an int >= 0 or None, got {value!r}")
    if value < 0:
        raise ValueError(f"tile_size must be >= 0 (0 = whole image), got {value}")
    return int(value)


def check_max_pixels(value) -> int:
    """max_pixels: an int >= 1, the largest image (width x height) read."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"max_pixels must be an int >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"max_pixels must be >= 1, got {value}")
    return int(value)
