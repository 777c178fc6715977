"""Which files of an output folder a resumed run may start from, newest first."""

import os
import re
from pathlib import Path

LAST_CHECKPOINT = "last_checkpoint"
# Files the periodic checkpointer writes ({prefix}_{iteration:07d}.pth) and the final one.
CHECKPOINT_PREFIX = "model"


def newest_first(paths: list[Path]) -> list[Path]:
    """Most recently written first; the iteration in the name breaks ties of equal times."""

    def key(p: Path) -> tuple[int, int]:
        digits = re.search(r"(\d+)\.pth$", p.name)
        return p.stat().st_mtime_ns, int(digits.group(1)) if digits else -1

    return sorted(paths, key=key, reverse=True)


def tagged_checkpoint(folder: str | os.PathLike) -> str | None:
    """The path ``last_checkpoint`` names (it may not exist), "" when the tag is empty, or
    None when there is no tag. Spelled as ``Path(folder) / name``, like the folder's listing."""
    tag = Path(folder) / LAST_CHECKPOINT
    try:
        name = tag.read_text(errors="replace").strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise OSError(e.errno, f"cannot read {tag}: {e.strerror}") from e
    return str(Path(folder) / name) if name else ""


def resume_candidates(folder: str | os.PathLike) -> list[tuple[str, str | None]]:
    """(path, problem known before reading it) for the file ``last_checkpoint`` names, then
    for every other ``model_*.pth`` of `folder`, most recently written first. Empty when the
    folder has neither (a fresh run)."""
    folder = Path(folder)
    tagged = tagged_checkpoint(folder)
    found = [p for p in folder.glob(f"{CHECKPOINT_PREFIX}_*.pth") if p.is_file()]
    out: list[tuple[str, str | None]] = [
        (str(p), None) for p in newest_first(found) if str(p) != tagged
    ]
    if tagged == "":
        out.insert(0, (str(folder / LAST_CHECKPOINT), "the tag file is empty"))
    elif tagged is not None:
        out.insert(0, (tagged, None if os.path.isfile(tagged) else "no such file"))
    return out
