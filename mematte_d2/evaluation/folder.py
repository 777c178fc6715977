"""Evaluating folders of saved mattes: matching files by stem and reading them as 8-bit planes.

Ground-truth alphas define the image set. For `<stem>.*` there, the prediction is `<stem>.*`
or `<stem>_alpha.*` (the name mematte-predict writes) and the trimap `<stem>.*` or
`<stem>_trimap.*`; any image extension OpenCV reads is accepted.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mematte_d2.utils.image_io import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    ImageReadError,
    read_plane,
    to_uint8,
)
from mematte_d2.utils.trimap import trimap_codes

from .metrics import check_inputs, compute_matting_metrics
from .report import metrics_to_record

PRED_SUFFIXES = ("", "_alpha")
TRIMAP_SUFFIXES = ("", "_trimap")


@dataclass
class FolderItem:
    """One ground-truth image and its prediction and trimap; `error` says why it is skipped."""

    stem: str
    alpha: Path
    pred: Path | None = None
    trimap: Path | None = None
    error: str | None = None


def _index(directory: Path) -> dict[str, list[Path]]:
    index: dict[str, list[Path]] = {}
    for p in sorted(directory.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
            index.setdefault(p.stem, []).append(p)
    return index


def _pick(index: dict[str, list[Path]], stem: str, suffixes, what: str, directory: Path):
    """(path, None) for exactly one candidate, else (None, reason)."""
    found = [p for s in suffixes for p in index.get(stem + s, [])]
    if len(found) == 1:
        return found[0], None
    if not found:
        names = " or ".join(f"{stem}{s}.*" for s in suffixes)
        return None, f"no {what} named {names} in {directory}"
    return None, f"several {what}s match: " + ", ".join(p.name for p in found)


def match_folders(pred_dir: Path, alpha_dir: Path, trimap_dir: Path):
    """FolderItems for every ground-truth file, and the predictions no ground truth claims."""
    for name, d in (("--pred", pred_dir), ("--alpha", alpha_dir), ("--trimap", trimap_dir)):
        if not Path(d).is_dir():
            raise FileNotFoundError(f"{name} {d}: no such directory")
    preds, trimaps = _index(Path(pred_dir)), _index(Path(trimap_dir))
    items, used = [], set()
    for stem, alphas in _index(Path(alpha_dir)).items():
        item = FolderItem(stem, alphas[0])
        if len(alphas) > 1:
            item.error = "several ground-truth files: " + ", ".join(p.name for p in alphas)
        else:
            item.pred, pred_err = _pick(preds, stem, PRED_SUFFIXES, "prediction", pred_dir)
            item.trimap, tri_err = _pick(trimaps, stem, TRIMAP_SUFFIXES, "trimap", trimap_dir)
            item.error = pred_err or tri_err
        used.update(stem + s for s in PRED_SUFFIXES)
        items.append(item)
    unclaimed = [p for stem, paths in preds.items() if stem not in used for p in paths]
    return items, unclaimed


def read_plane_u8(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An image file's first channel (R of colour, as MATLAB's imread(:,:,1)) as HxW uint8.

    16-bit and float files are rounded to 8 bits, as an 8-bit PNG would hold them; values
    their dtype's scale cannot mean are refused by mematte_d2.utils.image_io.
    """
    plane = read_plane(path, max_pixels)
    try:
        return to_uint8(plane)
    except TypeError as e:
        raise ImageReadError(f"{path}: {e}") from e


def evaluate_item(
    item: FolderItem,
    region: str = "unknown",
    snap_trimap: bool = False,
    max_pixels: int = MAX_PIXELS,
) -> dict:
    """Per-image record of a matched FolderItem; errors name the file at fault.

    Trimaps keep the release's rule, unlike predict, which snaps drawn trimaps by default:
    codes 0 and 255 are known, and the official metrics sum over the unknown pixels, those of
    code exactly 128 (the authors' evaluation.py). Other values would silently leave pixels
    out of that region, so a trimap holding them is refused unless `snap_trimap` asks for
    predict's snapping (mematte_d2.utils.trimap.snap_trimap: < 85 background, >= 170
    foreground, else unknown).
    """
    pred = read_plane_u8(item.pred, max_pixels)
    alpha = read_plane_u8(item.alpha, max_pixels)
    trimap = read_plane_u8(item.trimap, max_pixels)
    files = {"prediction": (item.pred, pred), "trimap": (item.trimap, trimap)}
    for what, (path, plane) in files.items():
        if plane.shape != alpha.shape:
            raise ValueError(
                f"{what} {path.name} is {plane.shape[0]}x{plane.shape[1]}, ground truth "
                f"{item.alpha.name} is {alpha.shape[0]}x{alpha.shape[1]} (HxW)"
            )
    try:
        trimap = trimap_codes(trimap, snap=snap_trimap)
    except ValueError as e:
        raise ValueError(f"{item.trimap.name}: {e}") from e
    check_inputs(pred, alpha, trimap)
    metrics = compute_matting_metrics(pred, alpha, trimap, region)
    return {
        "image_id": item.stem,
        "file_name": str(item.pred),
        "height": alpha.shape[0],
        "width": alpha.shape[1],
        **metrics_to_record(metrics),
    }
