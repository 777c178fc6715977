"""Finding the images a command line names and the trimap that belongs to each."""

import glob
from dataclasses import dataclass
from pathlib import Path

from mematte_d2.utils.image_io import IMAGE_EXTENSIONS

# Suffixes of the files the predict command writes; skipped when reading its own output folder.
OUTPUT_SUFFIXES = ("_alpha", "_cutout", "_composite", "_routing")


@dataclass
class Job:
    """One image to matte and its trimap (or mask) file; `error` is set when none usable was
    found for it."""

    image: Path
    trimap: Path | None
    error: str | None = None


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def list_images(
    spec: str, skip_outputs_in: Path | None = None
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Images named by `spec` (a file, a directory or a glob pattern) and the files passed over.

    Among the files of a directory or a glob's matches, those without an image extension are
    passed over, and so are this command's outputs (`<stem>_alpha.png`, ...) lying in
    `skip_outputs_in`; each comes back as (path, reason) so that the caller can report it.
    """
    path = Path(spec)
    if path.is_dir():
        return _sort_out(sorted(q for q in path.iterdir() if q.is_file()), skip_outputs_in)
    if path.exists():
        return [path], []
    if glob.has_magic(spec):
        matches = sorted(Path(p) for p in glob.glob(spec) if Path(p).is_file())
        return _sort_out(matches, skip_outputs_in)
    raise FileNotFoundError(f"--input {spec}: no such file, directory or matching glob")


def _sort_out(
    files: list[Path], skip_outputs_in: Path | None
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """`files` split into images to process and (file, reason) for those passed over."""
    output_dir = skip_outputs_in.resolve() if skip_outputs_in is not None else None
    images, skipped = [], []
    for p in files:
        if not _is_image(p):
            skipped.append((p, f"not an image file ({', '.join(IMAGE_EXTENSIONS)})"))
        elif p.parent.resolve() == output_dir and p.stem.endswith(OUTPUT_SUFFIXES):
            skipped.append((p, "an output of this command in the --output folder"))
        else:
            images.append(p)
    return images, skipped


def _trimap_index(directory: Path) -> dict[str, list[Path]]:
    index: dict[str, list[Path]] = {}
    for p in sorted(directory.iterdir()):
        if _is_image(p):
            index.setdefault(p.stem, []).append(p)
    return index


def pair_with_trimaps(images: list[Path], trimap_spec: str, kind: str = "trimap") -> list[Job]:
    """Match each image with a trimap (or a mask, ``kind="mask"``): one file for a single
    image, or a directory by stem.

    In a directory, `<stem>.*` or `<stem>_<kind>.*` is the file of `<stem>.*`; when they share
    the images' folder only `<stem>_<kind>.*` is, and an image file that is another image's
    trimap or mask is not an input itself. An image with no or several candidates becomes a Job
    with an error instead of stopping the run.
    """
    trimap_path = Path(trimap_spec)
    if trimap_path.is_file():
        if len(images) != 1:
            raise ValueError(
                f"--{kind} {trimap_spec} is one file but --input names {len(images)} images; "
                f"give a directory of {kind}s named like the images"
            )
        return [Job(images[0], trimap_path)]
    if not trimap_path.is_dir():
        raise FileNotFoundError(f"--{kind} {trimap_spec}: no such file or directory")
    index = _trimap_index(trimap_path)
    jobs = []
    for image in images:
        same_folder = image.parent.resolve() == trimap_path.resolve()
        suffixes = [s for s in ("", f"_{kind}") if s or not same_folder]
        candidates = [p for suffix in suffixes for p in index.get(image.stem + suffix, [])]
        if len(candidates) == 1:
            jobs.append(Job(image, candidates[0]))
        elif not candidates:
            names = " or ".join(f"{image.stem}{s}.*" for s in suffixes)
            jobs.append(Job(image, None, f"no {kind} named {names} in {trimap_path}"))
        else:
            names = ", ".join(p.name for p in candidates)
            jobs.append(Job(image, None, f"several {kind}s match {image.name}: {names}"))
    trimaps = {job.trimap.resolve() for job in jobs if job.trimap is not None}
    return [job for job in jobs if job.image.resolve() not in trimaps]
