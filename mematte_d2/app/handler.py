"""What the web app does with a request: read the uploads, build the trimap, run the predictor
with the request's own budget and write the results.

Every problem a user can cause (a file that is not an image, one over the pixel limit, a trimap
of another size, no unknown region, a bad budget) becomes a ``gr.Error`` whose message the page
shows; nothing here sets an attribute of the shared model, so requests from several browsers
never see each other's options.
"""

from __future__ import annotations

import copy
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np

from mematte_d2.cli.common import describe_error
from mematte_d2.inference.memory import parse_memory_size
from mematte_d2.inference.predictor import MattingPredictor
from mematte_d2.inference.render import (
    composite,
    estimate_foreground,
    make_cutout,
    routing_overlay,
)
from mematte_d2.modeling.routing import check_keep_ratio
from mematte_d2.utils.image_io import (
    ImageReadError,
    alpha_to_png_array,
    read_image,
    read_mask,
    read_trimap,
    to_float01,
    to_uint8,
    write_png,
)
from mematte_d2.utils.precision import autocast_dtype
from mematte_d2.utils.trimap import codes_on_255_scale, snap_trimap
from mematte_d2.utils.trimap_from_mask import trimap_from_mask

from .painting import make_preview, mask_from_painting, trimap_from_painting

logger = logging.getLogger(__name__)

TRIMAP_SOURCES = ("paint", "upload", "mask")
BUDGETS = ("memory budget", "keep ratio")
BACKGROUNDS = ("checkerboard", "colour", "image")
CHECKER = 16  # pixels per checkerboard square of the composite preview
# What run returns: alpha, composite, routing and trimap previews, 3 files, state, summary.
RUN_OUTPUTS = 9


class RunCancelled(Exception):
    """The user pressed Stop while the model ran."""


@dataclass
class Photo:
    """An uploaded photo: its pixels as read (any bit depth), 8-bit RGB and a file stem."""

    pixels: np.ndarray
    rgb: np.ndarray
    stem: str

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[0], self.rgb.shape[1]


def _stem(name: str) -> str:
    """A safe file stem for downloads from an uploaded file's name."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name).stem).strip("_")
    return stem[:64] or "image"


def _read(reader: Callable, path: str, what: str, max_pixels: int):
    """``reader(path)`` with its errors as a page message naming the upload, not the server's
    temporary path."""
    try:
        return reader(path, max_pixels)
    except (ImageReadError, ValueError, TypeError) as e:
        message = str(e).replace(str(path), Path(path).name)
        raise gr.Error(f"{what}: {message}") from e


def _check_size(plane: np.ndarray, photo: Photo, what: str) -> None:
    if plane.shape[:2] != photo.size:
        raise gr.Error(
            f"the {what} is {plane.shape[1]}x{plane.shape[0]} pixels but the image is "
            f"{photo.size[1]}x{photo.size[0]} (width x height); give one of the image's size"
        )


def check_unknown(trimap: np.ndarray) -> None:
    """Refuse a trimap without an unknown (grey) region: there would be nothing to matte."""
    if not np.any(trimap == 128):
        raise gr.Error(
            "the trimap has no unknown (grey) region, so there is nothing to matte: paint grey "
            "over the edges of the subject (hair, fur, blur)"
        )


def parse_colour(text: str) -> np.ndarray:
    """RGB in [0, 1] of a colour picker's value: '#rrggbb', '#rgb' or 'rgb(a)(r, g, b, ...)'."""
    text = (text or "").strip()
    hex_digits = text.lstrip("#")
    if text.startswith("#") and len(hex_digits) in (3, 6):
        if len(hex_digits) == 3:
            hex_digits = "".join(c * 2 for c in hex_digits)
        try:
            return np.array([int(hex_digits[i:i + 2], 16) for i in (0, 2, 4)], np.float32) / 255
        except ValueError:
            pass
    m = re.fullmatch(r"rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)[^)]*\)", text)
    if m:
        return np.clip(np.array([float(v) for v in m.groups()], np.float32) / 255, 0, 1)
    raise gr.Error(f"cannot read the colour {text!r}: use #rrggbb")


def checkerboard(height: int, width: int, square: int = CHECKER) -> np.ndarray:
    """HxWx3 float light/dark grey squares, the usual backdrop of transparent images."""
    ys, xs = np.indices((height, width))
    light = ((ys // square + xs // square) % 2 == 0)[:, :, None]
    return np.where(light, 0.8, 0.6).astype(np.float32).repeat(3, axis=2)


class MattingApp:
    """The app's handlers around one predictor (one model on one device).

    Args:
        predictor: the shared MattingPredictor; a request's keep ratio or memory budget is an
            argument of its call, and its precision rides on a shallow copy, so neither the
            model nor the shared predictor is changed by a request.
        workdir: a folder the app owns; each browser session writes its downloads in a
            sub-folder of it.
        max_pixels: the largest image (width x height) read from an upload.
    """

    def __init__(self, predictor: MattingPredictor, workdir: str | Path, max_pixels: int):
        self.predictor = predictor
        self.workdir = Path(workdir)
        self.max_pixels = max_pixels
        self._stops: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    # -- uploads ------------------------------------------------------------------------------

    def load_photo(self, path: str | None) -> Photo | None:
        """Read an uploaded photo (EXIF orientation applied, pixel limit checked)."""
        if not path:
            return None
        pixels = _read(read_image, path, "image", self.max_pixels)
        return Photo(pixels=pixels, rgb=to_uint8(pixels), stem=_stem(path))

    def on_upload(self, path: str | None):
        """(photo, editor value, text) after an upload; the editor shows a preview to paint on."""
        photo = self.load_photo(path)
        if photo is None:
            return None, None, ""
        h, w = photo.size
        editor = {"background": make_preview(photo.rgb), "layers": [], "composite": None}
        return photo, editor, f"{w} x {h} pixels"

    def build_trimap(
        self, photo: Photo | None, source: str, editor: dict | None, trimap_path: str | None,
        mask_path: str | None, band_percent: float,
    ) -> np.ndarray:
        """The 0 / 128 / 255 trimap at the photo's size from the chosen source."""
        if photo is None:
            raise gr.Error("upload an image first")
        h, w = photo.size
        layers = list((editor or {}).get("layers") or [])
        if source == "upload":
            if not trimap_path:
                raise gr.Error("upload a trimap, or choose another trimap source")
            raw = _read(read_trimap, trimap_path, "trimap", self.max_pixels)
            _check_size(raw, photo, "trimap")
            try:
                trimap, snapped = snap_trimap(codes_on_255_scale(raw))
            except ValueError as e:
                raise gr.Error(f"trimap: {e}") from e
            if snapped:
                gr.Info(f"{snapped} trimap pixels snapped to 0 / 128 / 255")
        elif source == "paint":
            trimap = trimap_from_painting(layers, h, w)
            if trimap is None:
                raise gr.Error("nothing is painted: paint grey over the subject's edges and "
                               "white over its inside")
        elif source == "mask":
            if mask_path:
                mask = _read(read_mask, mask_path, "mask", self.max_pixels)
                _check_size(mask, photo, "mask")
            else:
                mask = mask_from_painting(layers, h, w)
                if mask is None:
                    raise gr.Error("upload a mask, or paint the subject roughly")
            try:
                trimap = trimap_from_mask(mask, band_fraction=float(band_percent) / 100)
            except (TypeError, ValueError) as e:
                raise gr.Error(f"mask: {e}") from e
        else:
            raise gr.Error(f"trimap source must be one of {TRIMAP_SOURCES}, got {source!r}")
        check_unknown(trimap)
        return trimap

    def show_trimap(self, photo, source, editor, trimap_path, mask_path, band_percent):
        """The trimap preview shown before running."""
        trimap = self.build_trimap(photo, source, editor, trimap_path, mask_path, band_percent)
        return make_preview(trimap)

    # -- running ------------------------------------------------------------------------------

    def request_call(self, precision: str, budget: str, memory: str,
                     keep_ratio: float) -> tuple[MattingPredictor, dict]:
        """The predictor and ``predict`` arguments of one request.

        The predictor is a shallow copy of the shared one carrying the request's precision (the
        model and its engine are shared, never changed); the keep ratio or memory budget is an
        argument of the call.
        """
        base = self.predictor
        predictor, kwargs = copy.copy(base), {}
        try:
            predictor.autocast_dtype = autocast_dtype(precision, base.device)
            if budget == "keep ratio":
                kwargs["keep_ratio"] = check_keep_ratio(float(keep_ratio))
            elif budget == "memory budget":
                kwargs["max_memory"] = parse_memory_size(memory)
            else:
                raise ValueError(f"budget must be one of {BUDGETS}, got {budget!r}")
        except (TypeError, ValueError) as e:
            raise gr.Error(str(e)) from e
        return predictor, kwargs

    def stop(self, request: gr.Request | None = None) -> None:
        """Ask the session's running prediction to stop at its next progress step."""
        self._stop_event(request).set()

    def _stop_event(self, request) -> threading.Event:
        with self._lock:
            return self._stops.setdefault(_session(request), threading.Event())

    def predict(self, predictor: MattingPredictor, rgb: np.ndarray, trimap: np.ndarray,
                kwargs: dict, progress: Callable[[int, int, str], None] | None):
        """``predictor.predict`` with per-call options and the progress callback."""
        return predictor.predict(rgb, trimap, progress=progress, **kwargs)

    def run(self, photo, source, editor, trimap_path, mask_path, band_percent, budget, memory,
            keep_ratio, precision, bits, background, colour, background_path,
            request: gr.Request | None = None, progress=None):
        """Matte the photo; returns the previews, the download files and the result state."""
        trimap = self.build_trimap(photo, source, editor, trimap_path, mask_path, band_percent)
        predictor, kwargs = self.request_call(precision, budget, memory, keep_ratio)
        backdrop = self._backdrop_source(background, colour, background_path)
        stop = self._stop_event(request)
        stop.clear()

        def on_step(done: int, total: int, stage: str) -> None:
            if stop.is_set():
                raise RunCancelled
            if progress is not None:
                progress((done, total), desc=stage)

        if progress is not None:
            progress(0.0, desc="matting")
        try:
            result = self.predict(predictor, photo.rgb, trimap, kwargs, on_step)
        except RunCancelled:
            gr.Warning("stopped")
            return (gr.skip(),) * RUN_OUTPUTS
        except gr.Error:
            raise
        except Exception as e:  # the page gets one line; the server keeps serving
            logger.exception("prediction failed")
            raise gr.Error(describe_error(e)) from e
        if progress is not None:
            progress(1.0, desc="foreground colours")
        foreground = estimate_foreground(to_float01(photo.pixels), result.alpha)
        files = self.write_downloads(photo, trimap, result.alpha, foreground, int(bits), request)
        state = {
            "alpha": make_preview(result.alpha),
            "foreground": make_preview(foreground),
        }
        return (
            make_preview(alpha_to_png_array(result.alpha)),
            self.compose(state, backdrop),
            make_preview(routing_overlay(photo.rgb, result.routing)),
            make_preview(trimap),
            *files,
            state,
            f"{photo.size[1]} x {photo.size[0]} pixels: {result.summary()}",
        )

    def write_downloads(self, photo: Photo, trimap, alpha, foreground, bits: int, request):
        """Full-resolution alpha PNG, RGBA cutout and trimap in the session's folder."""
        if bits not in (8, 16):
            raise gr.Error(f"PNG bits must be 8 or 16, got {bits}")
        folder = self.workdir / _session(request)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / f"{photo.stem}_{kind}.png" for kind in ("alpha", "cutout", "trimap")]
        write_png(paths[0], alpha_to_png_array(alpha, bits))
        write_png(paths[1], make_cutout(foreground, alpha, bits))
        write_png(paths[2], trimap)
        return [str(p) for p in paths]

    # -- composite ----------------------------------------------------------------------------

    def _backdrop_source(self, background: str, colour: str, path: str | None):
        if background == "checkerboard":
            return ("checkerboard", None)
        if background == "colour":
            return ("colour", parse_colour(colour))
        if background == "image":
            if not path:
                raise gr.Error("upload a background image, or choose another background")
            return ("image", to_float01(_read(read_image, path, "background", self.max_pixels)))
        raise gr.Error(f"background must be one of {BACKGROUNDS}, got {background!r}")

    @staticmethod
    def compose(state: dict, backdrop) -> np.ndarray:
        """The preview of the cutout over the chosen backdrop."""
        alpha, foreground = state["alpha"], state["foreground"]
        h, w = alpha.shape
        kind, value = backdrop
        if kind == "checkerboard":
            back = checkerboard(h, w)
        elif kind == "colour":
            back = np.broadcast_to(value, (h, w, 3)).astype(np.float32)
        else:
            back = value
        return composite(foreground, alpha, back)

    def recompose(self, state, background, colour, background_path):
        """A new composite preview of the last result when the backdrop changes."""
        if not state:
            return gr.skip()
        return self.compose(state, self._backdrop_source(background, colour, background_path))


def _session(request) -> str:
    """The browser session's id as a folder name ("local" without one, as in direct calls)."""
    session = getattr(request, "session_hash", None) or "local"
    return re.sub(r"[^A-Za-z0-9_-]", "_", session)[:64]
