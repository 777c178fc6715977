"""The standard matting data sets, registered on `import mematte_d2` under $MEMATTE_DATASETS.

The root defaults to ./datasets and, like detectron2's $DETECTRON2_DATASETS, is kept relative
(resolved against the working directory when a set is loaded). Every set is always registered;
loading one whose folders are missing raises FileNotFoundError naming the expected paths.
Layouts are documented in datasets/README.md. The training sets of the paper pair foregrounds
with backgrounds as the release does: one sample per background (see
:func:`~mematte_d2.data.datasets.load_composition_dicts`).
"""

import os

from .datasets import register_matting_dataset

__all__ = ["BUILTIN_DATASETS", "builtin_dataset_args", "datasets_root", "register_all_builtins"]

_COCO_BG = "coco/train2014"

# name -> registration arguments, paths relative to the data set root.
BUILTIN_DATASETS: dict[str, dict] = {
    "comp1k_train": dict(fg_dir="Combined_Dataset/Training_set/fg",
                         alpha_dir="Combined_Dataset/Training_set/alpha",
                         bg_dir=_COCO_BG),
    "comp1k_test": dict(image_dir="Composition-1k-testset/merged",
                        alpha_dir="Composition-1k-testset/alpha_copy",
                        trimap_dir="Composition-1k-testset/trimaps"),
    "d646_train": dict(fg_dir="Distinctions-646/Train/FG", alpha_dir="Distinctions-646/Train/GT",
                       bg_dir=_COCO_BG),
    "d646_test": dict(image_dir="Distinctions-646/Test/merged",
                      alpha_dir="Distinctions-646/Test/alpha_copy",
                      trimap_dir="Distinctions-646/Test/trimaps"),
    "aim500_test": dict(image_dir="AIM-500/original", alpha_dir="AIM-500/mask",
                        trimap_dir="AIM-500/trimap"),
    "p3m500_test": dict(image_dir="P3M-10k/validation/P3M-500-P/blurred_image",
                        alpha_dir="P3M-10k/validation/P3M-500-P/mask",
                        trimap_dir="P3M-10k/validation/P3M-500-P/trimap"),
    "uhr395_train": dict(fg_dir="UHR-395/train/fg", alpha_dir="UHR-395/train/alpha",
                         bg_dir="UHR-395/train/bg"),
    "uhr395_test": dict(image_dir="UHR-395/test/image", alpha_dir="UHR-395/test/alpha",
                        trimap_dir="UHR-395/test/trimap", fg_dir="UHR-395/test/fg",
                        bg_dir="UHR-395/test/bg"),
    # 40 foregrounds but 20 backgrounds: one sample per background would leave half of the
    # foregrounds out, so this small CPU set pairs 5 backgrounds with every foreground.
    "synthetic_train": dict(fg_dir="synthetic/train/fg", alpha_dir="synthetic/train/alpha",
                            bg_dir="synthetic/train/bg", bg_per_fg=5),
    "synthetic_test": dict(image_dir="synthetic/test/image", alpha_dir="synthetic/test/alpha",
                           trimap_dir="synthetic/test/trimap", fg_dir="synthetic/test/fg",
                           bg_dir="synthetic/test/bg"),
}


def datasets_root() -> str:
    """$MEMATTE_DATASETS, or "datasets" (relative to the working directory) when unset."""
    return os.environ.get("MEMATTE_DATASETS", "datasets")


def builtin_dataset_args(name: str, root: str | os.PathLike | None = None) -> dict:
    """The register_matting_dataset arguments of builtin `name` with folders under `root`."""
    root = os.fspath(datasets_root() if root is None else root)
    args = dict(BUILTIN_DATASETS[name])
    for key, value in args.items():
        if key.endswith("_dir"):
            args[key] = os.path.join(root, value)
    return args


def register_all_builtins(root: str | os.PathLike | None = None) -> None:
    """Register every builtin set under `root` (default: :func:`datasets_root`)."""
    for name in BUILTIN_DATASETS:
        register_matting_dataset(name, **builtin_dataset_args(name, root))


register_all_builtins()
