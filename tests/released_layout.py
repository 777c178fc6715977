"""Key -> shape tables of the released MEMatte checkpoints (tests/fixtures/upstream_state_dict)."""

from pathlib import Path

LAYOUT_DIR = Path(__file__).resolve().parent / "fixtures" / "upstream_state_dict"


def released_shapes(variant: str, prefix: str = "") -> dict[str, tuple[int, ...]]:
    """Shapes of the released ``mematte_{variant}_topk0.25`` checkpoint's keys under ``prefix``.

    The prefix is removed from the returned keys; ``prefix=""`` returns every key as stored.
    """
    path = LAYOUT_DIR / f"mematte_{variant}_topk0.25.tsv"
    shapes = {}
    for line in path.read_text().splitlines()[1:]:
        key, shape, _dtype = line.split("\t")
        if key.startswith(prefix):
            shapes[key[len(prefix) :]] = tuple(int(s) for s in shape.strip("()").split(",") if s)
    return shapes
