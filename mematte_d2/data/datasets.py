"""Registering matting data sets in detectron2's DatasetCatalog / MetadataCatalog.

Two kinds of sets exist:

* composition sets (training): foreground + alpha pairs and a folder of backgrounds, composed on
  the fly by the training mapper. Dicts: {"fg_file", "alpha_file", "bg_file", "image_id"}; by
  default one per background, foreground index = sample index mod #foregrounds (the release's
  pairing), or `bg_per_fg` per foreground.
* evaluation sets: composited images with their alpha and trimap (optionally fg and bg). Dicts:
  {"file_name", "alpha_file", "trimap_file", "image_id", "height", "width"[, "fg_file",
  "bg_file"]}.

Registration is lazy: folders are listed (and checked) only when the set is asked for, so sets
can be registered before their data exists. Files of a sample are paired by file stem.
"""

import os
from collections.abc import Sequence
from pathlib import Path

from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image, UnidentifiedImageError

from mematte_d2.utils.image_io import IMAGE_EXTENSIONS, ImageReadError

__all__ = [
    "get_matting_dataset_dicts",
    "load_composition_dicts",
    "load_evaluation_dicts",
    "register_composition_dataset",
    "register_evaluation_dataset",
    "register_matting_dataset",
]

EVAL_REGIONS = ("unknown", "whole")
LAYOUT_HINT = (
    "See datasets/README.md for the expected folder layouts; builtin sets live under "
    "$MEMATTE_DATASETS (default ./datasets)."
)

# name -> the arguments it was registered with, to tell a repeated registration from a clash.
_DEFINITIONS: dict[str, tuple] = {}


def _check_dirs(name: str, dirs: dict[str, str | None]) -> None:
    missing = [f"{role}={path}" for role, path in dirs.items() if path and not Path(path).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"data set {name!r}: missing folder(s) {', '.join(missing)} (relative paths are "
            f"resolved against {os.getcwd()}). {LAYOUT_HINT}"
        )


def _images_by_stem(directory: str) -> dict[str, str]:
    """The image files of `directory` keyed by file stem (two files with one stem is an error)."""
    found: dict[str, str] = {}
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        stem, ext = os.path.splitext(entry.name)
        if ext.lower() not in IMAGE_EXTENSIONS or not entry.is_file():
            continue
        if stem in found:
            raise ValueError(
                f"{directory}: two images share the stem {stem!r} "
                f"({os.path.basename(found[stem])}, {entry.name})"
            )
        found[stem] = os.path.join(directory, entry.name)
    if not found:
        raise FileNotFoundError(f"{directory}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return found


def _partner(stem: str, owner: str, index: dict[str, str], directory: str, role: str) -> str:
    if stem not in index:
        raise FileNotFoundError(f"{owner}: no {role} file named {stem}.* in {directory}")
    return index[stem]


def _unpaired_error(extra: list[str], directory: str, main_dir: str) -> FileNotFoundError:
    shown = ", ".join(extra[:5]) + (" ..." if len(extra) > 5 else "")
    return FileNotFoundError(f"{directory}: {len(extra)} file(s) with no partner in {main_dir}: "
                             f"{shown}")


def load_composition_dicts(fg_dir: str, alpha_dir: str, bg_dir: str, bg_per_fg: int | None = None
                           ) -> list[dict]:
    """Dicts of a composition set, files in sorted order.

    `bg_per_fg` None (the release's pairing): one sample per background, sample i pairing
    background i with foreground i mod #foregrounds. An int: foreground i gives `bg_per_fg`
    samples, with backgrounds (i * bg_per_fg + j) mod #backgrounds, j < bg_per_fg.
    """
    fgs, alphas = _images_by_stem(fg_dir), _images_by_stem(alpha_dir)
    bgs = sorted(_images_by_stem(bg_dir).values())
    extra = sorted(set(alphas) - set(fgs))
    if extra:
        raise _unpaired_error([alphas[s] for s in extra], alpha_dir, fg_dir)
    pairs = [(stem, fg_file, _partner(stem, fg_file, alphas, alpha_dir, "alpha"))
             for stem, fg_file in fgs.items()]
    if bg_per_fg is None:  # (foreground, background, number of the sample for its image_id)
        samples = [(pairs[i % len(pairs)], bg_file, i) for i, bg_file in enumerate(bgs)]
    else:
        samples = [(pair, bgs[(i * bg_per_fg + j) % len(bgs)], j)
                   for i, pair in enumerate(pairs) for j in range(bg_per_fg)]
    return [
        {"fg_file": fg_file, "alpha_file": alpha_file, "bg_file": bg_file,
         "image_id": f"{stem}_{number}"}
        for (stem, fg_file, alpha_file), bg_file, number in samples
    ]


def _image_size(path: str) -> tuple[int, int]:
    """(height, width) from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as im:
            width, height = im.size
    except (UnidentifiedImageError, OSError) as e:
        raise ImageReadError(f"{path}: not a readable image ({e})") from e
    return height, width


def load_evaluation_dicts(image_dir: str, alpha_dir: str, trimap_dir: str,
                          fg_dir: str | None = None, bg_dir: str | None = None) -> list[dict]:
    """Dicts of an evaluation set; every image needs an alpha and a trimap of the same stem."""
    images = _images_by_stem(image_dir)
    partners = {"alpha_file": (alpha_dir, "alpha"), "trimap_file": (trimap_dir, "trimap")}
    if fg_dir:
        partners["fg_file"] = (fg_dir, "foreground")
    if bg_dir:
        partners["bg_file"] = (bg_dir, "background")
    indexes = {key: _images_by_stem(d) for key, (d, _) in partners.items()}
    for key in ("alpha_file", "trimap_file"):
        extra = sorted(set(indexes[key]) - set(images))
        if extra:
            raise _unpaired_error([indexes[key][s] for s in extra], partners[key][0], image_dir)
    dicts = []
    for stem, file_name in images.items():
        record = {"file_name": file_name, "image_id": stem}
        for key, (directory, role) in partners.items():
            record[key] = _partner(stem, file_name, indexes[key], directory, role)
        record["height"], record["width"] = _image_size(file_name)
        dicts.append(record)
    return dicts


def _register(name: str, definition: tuple, loader, metadata: dict) -> None:
    if name in _DEFINITIONS:
        if _DEFINITIONS[name] != definition:
            raise ValueError(
                f"data set {name!r} is already registered with a different definition:\n"
                f"  existing: {_DEFINITIONS[name]}\n  new:      {definition}"
            )
        return
    if name in DatasetCatalog:
        raise ValueError(f"data set {name!r} is already registered (not as a matting set)")
    DatasetCatalog.register(name, loader)
    MetadataCatalog.get(name).set(evaluator_type="matting", **metadata)
    _DEFINITIONS[name] = definition


def _path(p) -> str | None:
    return None if p is None else os.fspath(p)


def register_composition_dataset(name: str, fg_dir, alpha_dir, bg_dir,
                                 bg_per_fg: int | None = None, eval_region: str = "unknown"
                                 ) -> None:
    """Register a training set composed on the fly from foregrounds, alphas and backgrounds.

    Args:
        name: the DatasetCatalog name.
        fg_dir, alpha_dir: foreground colours and alpha mattes, paired by file stem.
        bg_dir: background images, handed out in sorted order.
        bg_per_fg: None (the release's pairing): one sample per background, so an epoch is
            #backgrounds samples (82,783 for Composition-1K on COCO train2014), foreground
            index = sample index mod #foregrounds. An int: that many samples (each with its
            own background) per foreground.
        eval_region: "unknown" or "whole", recorded for evaluators.
    """
    if bg_per_fg is not None and (not isinstance(bg_per_fg, int) or bg_per_fg < 1):
        raise ValueError(f"data set {name!r}: bg_per_fg must be None or a positive int, "
                         f"got {bg_per_fg!r}")
    _check_region(name, eval_region)
    dirs = {"fg_dir": _path(fg_dir), "alpha_dir": _path(alpha_dir), "bg_dir": _path(bg_dir)}

    def load() -> list[dict]:
        _check_dirs(name, dirs)
        return load_composition_dicts(**dirs, bg_per_fg=bg_per_fg)

    definition = ("composition", tuple(dirs.items()), bg_per_fg, eval_region)
    _register(name, definition, load,
              dict(kind="composition", eval_region=eval_region, bg_per_fg=bg_per_fg, **dirs))


def register_evaluation_dataset(name: str, image_dir, alpha_dir, trimap_dir, fg_dir=None,
                                bg_dir=None, eval_region: str = "unknown") -> None:
    """Register a test set of composited (or real) images with alpha and trimap.

    Args:
        name: the DatasetCatalog name.
        image_dir, alpha_dir, trimap_dir: paired by file stem; a missing partner is an error.
        fg_dir, bg_dir: optional ground-truth foreground / background, also paired by stem.
        eval_region: "unknown" (error over the trimap's unknown region, the Composition-1K
            convention) or "whole" (over every pixel).
    """
    _check_region(name, eval_region)
    dirs = {"image_dir": _path(image_dir), "alpha_dir": _path(alpha_dir),
            "trimap_dir": _path(trimap_dir), "fg_dir": _path(fg_dir), "bg_dir": _path(bg_dir)}

    def load() -> list[dict]:
        _check_dirs(name, dirs)
        return load_evaluation_dicts(**dirs)

    definition = ("evaluation", tuple(dirs.items()), eval_region)
    _register(name, definition, load, dict(kind="evaluation", eval_region=eval_region, **dirs))


def _check_region(name: str, eval_region: str) -> None:
    if eval_region not in EVAL_REGIONS:
        raise ValueError(f"data set {name!r}: eval_region must be one of {EVAL_REGIONS}, "
                         f"got {eval_region!r}")


def register_matting_dataset(name: str, **kwargs) -> None:
    """Register a matting data set; the keyword arguments given decide its kind.

    * ``image_dir``, ``alpha_dir``, ``trimap_dir`` (+ optional ``fg_dir``, ``bg_dir``,
      ``eval_region``): an evaluation set, see :func:`register_evaluation_dataset`.
    * ``fg_dir``, ``alpha_dir``, ``bg_dir`` (+ optional ``bg_per_fg``, ``eval_region``): a
      training set composed on the fly, see :func:`register_composition_dataset`.

    Registering a name again with the same arguments does nothing; with other arguments it is
    an error. Folders are checked when the set is first loaded.

    Example::

        from mematte_d2.data import register_matting_dataset
        register_matting_dataset("mine_train", fg_dir="data/mine/fg", alpha_dir="data/mine/alpha",
                                 bg_dir="data/backgrounds", bg_per_fg=10)
        register_matting_dataset("mine_test", image_dir="data/mine_test/image",
                                 alpha_dir="data/mine_test/alpha",
                                 trimap_dir="data/mine_test/trimap", eval_region="unknown")
    """
    if "image_dir" in kwargs:
        register_evaluation_dataset(name, **kwargs)
    elif {"fg_dir", "alpha_dir", "bg_dir"} <= kwargs.keys():
        register_composition_dataset(name, **kwargs)
    else:
        raise TypeError(
            f"register_matting_dataset({name!r}): got arguments {sorted(kwargs)}; give either "
            "image_dir, alpha_dir, trimap_dir (evaluation set) or fg_dir, alpha_dir, bg_dir "
            "(composition set)"
        )


def get_matting_dataset_dicts(dataset: str | Sequence[str] | Sequence[dict]) -> list[dict]:
    """Dataset dicts from a registered name, a list of names, or a list of dicts (kept as is)."""
    if isinstance(dataset, str):
        dataset = [dataset]
    dataset = list(dataset)
    if not dataset:
        raise ValueError("empty data set specification")
    if all(isinstance(d, dict) for d in dataset):
        return dataset
    if not all(isinstance(d, str) for d in dataset):
        raise TypeError(f"expected a data set name, a list of names or a list of dicts, "
                        f"got {dataset!r:.200}")
    dicts = []
    for name in dataset:
        part = DatasetCatalog.get(name)
        if not part:
            raise ValueError(f"data set {name!r} is empty")
        dicts.extend(part)
    return dicts
