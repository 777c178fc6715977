"""Compose the Composition-1K test set byte for byte as the official Adobe script does.

Each of the 50 Adobe test foregrounds is composited onto 20 PASCAL VOC backgrounds, handed out
in order (foreground i gets backgrounds 20 i .. 20 i + 19). As in the Deep Image Matting
release's Composition_code.py (files read by PIL): a background smaller than the foreground is
enlarged with PIL's bicubic filter (aspect kept, sides rounded up) just enough to cover it, its
top-left corner is used, and each pixel keeps the foreground where alpha is 255, the
background where it is 0 and is truncated to an integer in between
(mematte_d2.data.compose.adobe_composite). Outputs, named `<fg stem>_<j>` (j = 0..19):

    OUT/merged/*.png       composited images
    OUT/alpha_copy/*       the foreground's alpha (copied file)
    OUT/trimaps/*          the foreground's trimap (copied, or made from the alpha)
    OUT/fg/*               the foreground (copied file)
    OUT/bg/*.png           the background as used (scaled and cropped)

Example (the Adobe release unpacked under datasets/Adobe_Deep_Matting_Dataset):

    python datasets/compose_comp1k_test.py \
        --fg-dir "Combined_Dataset/Test_set/Adobe-licensed images/fg" \
        --alpha-dir "Combined_Dataset/Test_set/Adobe-licensed images/alpha" \
        --trimap-dir "Combined_Dataset/Test_set/Adobe-licensed images/trimaps" \
        --bg-dir VOCdevkit/VOC2012/JPEGImages \
        --fg-names Combined_Dataset/Test_set/test_fg_names.txt \
        --bg-names Combined_Dataset/Test_set/test_bg_names.txt \
        --out datasets/Composition-1k-testset

Files that cannot be read are reported by name and skipped; the exit status is 1 if any were.
The same script composes Distinctions-646's test set (no trimaps shipped: leave out
--trimap-dir and trimaps are made from the alpha with --trimap-kernel).
"""

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

from mematte_d2.data.compose import (
    adobe_background,
    adobe_composite,
    compose_pairs,
    find_by_stem,
    list_image_files,
    read_adobe_alpha,
    read_adobe_rgb,
    trimap_from_alpha,
)
from mematte_d2.data.reading import check_same_size
from mematte_d2.utils.image_io import ImageReadError, read_trimap, write_png

SUBDIRS = ("merged", "alpha_copy", "trimaps", "fg", "bg")
_READ_ERRORS = (ImageReadError, FileNotFoundError, ValueError)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fg-dir", required=True)
    parser.add_argument("--alpha-dir", required=True, help="alphas named like the foregrounds")
    parser.add_argument("--trimap-dir", help="trimaps named like the foregrounds; without it, "
                        "trimaps are made from the alpha")
    parser.add_argument("--bg-dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--fg-names", help="file listing the foreground file names in order")
    parser.add_argument("--bg-names", help="file listing the background file names in order")
    parser.add_argument("--bg-per-fg", type=int, default=20)
    parser.add_argument("--trimap-kernel", type=int, default=25,
                        help="erosion disc diameter of made trimaps (default 25)")
    return parser.parse_args(argv)


def _load_foreground(fg_path: Path, args: argparse.Namespace):
    """(fg uint8, alpha uint8, alpha file, trimap file or None, trimap array)."""
    alpha_path = find_by_stem(args.alpha_dir, fg_path.stem)
    fg = np.asarray(read_adobe_rgb(fg_path))
    alpha = read_adobe_alpha(alpha_path)
    if args.trimap_dir:
        trimap_path = find_by_stem(args.trimap_dir, fg_path.stem)
        trimap = read_trimap(trimap_path)
    else:
        trimap_path = None
        trimap = trimap_from_alpha(alpha, args.trimap_kernel)
    arrays = {fg_path: fg, alpha_path: alpha}
    if trimap_path is not None:
        arrays[trimap_path] = trimap
    check_same_size(arrays)
    return fg, alpha, alpha_path, trimap_path, trimap


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fgs = list_image_files(args.fg_dir, args.fg_names)
    bgs = list_image_files(args.bg_dir, args.bg_names)
    needed = len(fgs) * args.bg_per_fg
    if len(bgs) < needed:
        print(f"error: {len(fgs)} foregrounds x {args.bg_per_fg} need {needed} backgrounds, "
              f"{args.bg_dir} has {len(bgs)}", file=sys.stderr)
        return 2
    out = Path(args.out)
    for sub in SUBDIRS:
        (out / sub).mkdir(parents=True, exist_ok=True)

    def load_background(bg_path: Path, loaded) -> np.ndarray:
        h, w = loaded[1].shape
        return adobe_background(read_adobe_rgb(bg_path), h, w)

    def write(fg_path: Path, j: int, loaded, bg: np.ndarray) -> None:
        fg, alpha, alpha_path, trimap_path, trimap = loaded
        name = f"{fg_path.stem}_{j}"
        write_png(out / "merged" / f"{name}.png", adobe_composite(fg, alpha, bg))
        write_png(out / "bg" / f"{name}.png", np.ascontiguousarray(bg))
        shutil.copyfile(alpha_path, out / "alpha_copy" / f"{name}{alpha_path.suffix}")
        shutil.copyfile(fg_path, out / "fg" / f"{name}{fg_path.suffix}")
        if trimap_path is None:
            write_png(out / "trimaps" / f"{name}.png", trimap)
        else:
            shutil.copyfile(trimap_path, out / "trimaps" / f"{name}{trimap_path.suffix}")

    written, skipped = compose_pairs(
        fgs,
        lambda i: bgs[i * args.bg_per_fg:(i + 1) * args.bg_per_fg],
        lambda fg_path: _load_foreground(fg_path, args),
        load_background,
        write,
        _READ_ERRORS,
    )
    print(f"wrote {written} composites to {out}; skipped {len(skipped)} unreadable file(s)")
    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
