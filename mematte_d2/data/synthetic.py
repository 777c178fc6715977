"""The bundled synthetic matting set: deterministic, generated in seconds, no download.

    python -m mematte_d2.data.synthetic --out datasets/synthetic [--num-train 40 --num-bg 20
        --num-test 10 --size 320 --test-size 320 --seed 0]

writes

    train/fg/fg_XXXX.png, train/alpha/fg_XXXX.png   foregrounds + mattes (composition set)
    train/bg/bg_XXXX.jpg                            backgrounds
    test/{image,alpha,trimap,fg,bg}/test_XXXX.png   composited test images with trimaps
    manifest.json                                   parameters and file lists

The whole set is written into a temporary sibling folder and renamed into place at the end,
so an interrupted run never leaves a folder that looks complete. Every item has its own
random stream (seed, kind, index): the same seed gives byte-identical files.
"""

import argparse
import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

import cv2
import numpy as np

from mematte_d2.utils.image_io import alpha_to_png_array, write_png

from .builtin import datasets_root
from .compose import composite, trimap_from_alpha
from .procedural import random_background, random_foreground

__all__ = ["DEFAULTS", "ensure_synthetic_dataset", "generate_synthetic_dataset", "main"]

DEFAULTS = dict(num_train=40, num_bg=20, num_test=10, size=320, test_size=320, seed=0)
MANIFEST = "manifest.json"
FORMAT_VERSION = 1
_TRAIN_FG, _TRAIN_BG, _TEST_FG, _TEST_BG = range(4)


def _rng(seed: int, kind: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, kind, index])


def _write_jpg(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise OSError(f"{path}: could not encode JPEG")
    buf.tofile(str(path))


def _write_train(out: Path, num_train: int, num_bg: int, size: int, seed: int) -> dict:
    for sub in ("fg", "alpha", "bg"):
        (out / "train" / sub).mkdir(parents=True)
    fgs, bgs = [], []
    for i in range(num_train):
        rng = _rng(seed, _TRAIN_FG, i)
        fg, alpha = random_foreground(rng, size, round(size * rng.uniform(0.8, 1.25)))
        name = f"fg_{i:04d}.png"
        write_png(out / "train" / "fg" / name, fg)
        write_png(out / "train" / "alpha" / name, alpha_to_png_array(alpha))
        fgs.append(name)
    for i in range(num_bg):
        rng = _rng(seed, _TRAIN_BG, i)
        name = f"bg_{i:04d}.jpg"
        _write_jpg(out / "train" / "bg" / name,
                   random_background(rng, round(size * 1.25), round(size * 1.5)))
        bgs.append(name)
    return {"fg": fgs, "bg": bgs}


def _write_test(out: Path, num_test: int, test_size: int, seed: int) -> list[str]:
    dirs = {sub: out / "test" / sub for sub in ("image", "alpha", "trimap", "fg", "bg")}
    for d in dirs.values():
        d.mkdir(parents=True)
    kernel = 2 * max(1, round(test_size / 64)) + 1
    names = []
    for i in range(num_test):
        fg, alpha = random_foreground(_rng(seed, _TEST_FG, i), test_size, test_size)
        bg = random_background(_rng(seed, _TEST_BG, i), test_size, test_size)
        alpha8 = alpha_to_png_array(alpha)
        name = f"test_{i:04d}.png"
        write_png(dirs["image"] / name, composite(fg, alpha8 / np.float32(255.0), bg))
        write_png(dirs["alpha"] / name, alpha8)
        write_png(dirs["trimap"] / name, trimap_from_alpha(alpha8, kernel))
        write_png(dirs["fg"] / name, fg)
        write_png(dirs["bg"] / name, bg)
        names.append(name)
    return names


def generate_synthetic_dataset(out: str | os.PathLike, *, num_train: int, num_bg: int,
                               num_test: int, size: int, test_size: int, seed: int) -> Path:
    """Write the synthetic set into `out`, which must not exist yet (see the module doc)."""
    out = Path(out)
    if num_train < 1 or num_bg < 1 or num_test < 0 or size < 32 or test_size < 32:
        raise ValueError("need num_train >= 1, num_bg >= 1, num_test >= 0, size >= 32 and "
                         f"test_size >= 32; got {num_train}, {num_bg}, {num_test}, {size}, "
                         f"{test_size}")
    if out.exists():
        raise FileExistsError(f"{out} already exists; remove it or choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        params = dict(num_train=num_train, num_bg=num_bg, num_test=num_test, size=size,
                      test_size=test_size, seed=seed)
        manifest = {"generator": "mematte_d2.data.synthetic", "version": FORMAT_VERSION,
                    "params": params,
                    "train": _write_train(tmp, num_train, num_bg, size, seed),
                    "test": _write_test(tmp, num_test, test_size, seed)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        try:
            os.rename(tmp, out)
        except OSError as e:  # another process finished first
            raise FileExistsError(f"{out} appeared while generating: {e}") from e
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def ensure_synthetic_dataset(root: str | os.PathLike | None = None) -> Path:
    """Return `root` (default $MEMATTE_DATASETS/synthetic), generating the default synthetic
    set there first unless a complete one (with its manifest) is present."""
    root = Path(datasets_root(), "synthetic") if root is None else Path(root)
    if (root / MANIFEST).is_file():
        return root
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()
    elif root.exists():
        raise FileExistsError(f"{root} exists but holds no {MANIFEST}: not a complete synthetic "
                              "set (delete it to regenerate)")
    try:
        generate_synthetic_dataset(root, **DEFAULTS)
    except FileExistsError:
        if not (root / MANIFEST).is_file():
            raise
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mematte_d2.data.synthetic",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder (must not exist)")
    parser.add_argument("--num-train", type=int, default=DEFAULTS["num_train"],
                        help="training foregrounds")
    parser.add_argument("--num-bg", type=int, default=DEFAULTS["num_bg"],
                        help="training backgrounds")
    parser.add_argument("--num-test", type=int, default=DEFAULTS["num_test"],
                        help="composited test images")
    parser.add_argument("--size", type=int, default=DEFAULTS["size"],
                        help="height of the training foregrounds (backgrounds are 1.25x1.5x)")
    parser.add_argument("--test-size", type=int, default=DEFAULTS["test_size"],
                        help="side of the square test images (e.g. 2048 for 4 megapixels)")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        out = generate_synthetic_dataset(
            args.out, num_train=args.num_train, num_bg=args.num_bg, num_test=args.num_test,
            size=args.size, test_size=args.test_size, seed=args.seed)
    except (FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote the synthetic matting set to {out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
