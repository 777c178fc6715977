"""Compose an ultra-high-resolution test set: N foregrounds x M backgrounds at a target size.

UHR-395 (MEMatte's set: 395 alpha mattes, mean 4872 x 6017 px) is composited this way. Each
foreground and its alpha are resized so that the long side is --long-side pixels; foreground
i gets backgrounds (i M + j) mod #backgrounds, each scaled to cover the foreground and
centre-cropped; the blend is the official Adobe per-pixel rule of Composition-1K (foreground
where alpha is 255, background where 0, truncated in between). Trimaps are made from the
alpha by eroding its opaque and transparent parts with a disc (diameter --trimap-kernel,
default long side / 100). Outputs, named `<fg stem>_<j>.png`, form an evaluation set:

    OUT/image/  OUT/alpha/  OUT/trimap/  OUT/fg/  OUT/bg/

    python datasets/compose_uhr.py --fg-dir UHR-395/raw/test/fg --alpha-dir \
        UHR-395/raw/test/alpha --bg-dir backgrounds --bg-per-fg 25 --long-side 6000 \
        --out datasets/UHR-395/test

Files that cannot be read are reported by name and skipped; the exit status is 1 if any were.
"""

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from mematte_d2.data.compose import (
    adobe_composite,
    compose_pairs,
    cover_crop,
    find_by_stem,
    list_image_files,
    trimap_from_alpha,
)
from mematte_d2.data.reading import check_same_size, read_alpha
from mematte_d2.utils.image_io import (
    ImageReadError,
    alpha_to_png_array,
    read_image,
    to_uint8,
    write_png,
)

SUBDIRS = ("image", "alpha", "trimap", "fg", "bg")
_READ_ERRORS = (ImageReadError, FileNotFoundError, ValueError)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fg-dir", required=True)
    parser.add_argument("--alpha-dir", required=True, help="alphas named like the foregrounds")
    parser.add_argument("--bg-dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--num-fg", type=int, help="use the first N foregrounds (default all)")
    parser.add_argument("--bg-per-fg", type=int, default=1, help="M backgrounds per foreground")
    parser.add_argument("--long-side", type=int, required=True, help="target long side in px")
    parser.add_argument("--trimap-kernel", type=int, help="default: long side / 100, odd")
    return parser.parse_args(argv)


def _resize_long_side(img: np.ndarray, long_side: int) -> np.ndarray:
    h, w = img.shape[:2]
    ratio = long_side / max(h, w)
    size = (max(1, round(w * ratio)), max(1, round(h * ratio)))
    interp = cv2.INTER_CUBIC if ratio > 1 else cv2.INTER_AREA
    return cv2.resize(img, size, interpolation=interp)


def _load_foreground(fg_path: Path, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """(foreground uint8, alpha uint8), both resized to the target long side."""
    alpha_path = find_by_stem(args.alpha_dir, fg_path.stem)
    fg, alpha = to_uint8(read_image(fg_path)), read_alpha(alpha_path)
    check_same_size({fg_path: fg, alpha_path: alpha})
    alpha = np.clip(_resize_long_side(alpha, args.long_side), 0.0, 1.0)
    return _resize_long_side(fg, args.long_side), alpha_to_png_array(alpha)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fgs = list_image_files(args.fg_dir)[:args.num_fg]
    bgs = list_image_files(args.bg_dir)
    if not fgs or not bgs:
        print(f"error: no foregrounds in {args.fg_dir} or no backgrounds in {args.bg_dir}",
              file=sys.stderr)
        return 2
    kernel = args.trimap_kernel or (args.long_side // 100) | 1
    out = Path(args.out)
    for sub in SUBDIRS:
        (out / sub).mkdir(parents=True, exist_ok=True)

    def load_background(bg_path: Path, loaded) -> np.ndarray:
        h, w = loaded[1].shape
        return cover_crop(to_uint8(read_image(bg_path)), h, w)

    def write(fg_path: Path, j: int, loaded, bg: np.ndarray) -> None:
        fg, alpha8 = loaded
        name = f"{fg_path.stem}_{j}.png"
        write_png(out / "image" / name, adobe_composite(fg, alpha8, bg))
        write_png(out / "alpha" / name, alpha8)
        write_png(out / "trimap" / name, trimap_from_alpha(alpha8, kernel))
        write_png(out / "fg" / name, fg)
        write_png(out / "bg" / name, np.ascontiguousarray(bg))

    written, skipped = compose_pairs(
        fgs,
        lambda i: [bgs[(i * args.bg_per_fg + j) % len(bgs)] for j in range(args.bg_per_fg)],
        lambda fg_path: _load_foreground(fg_path, args),
        load_background,
        write,
        _READ_ERRORS,
    )
    print(f"wrote {written} composites to {out}; skipped {len(skipped)} unreadable file(s)")
    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
