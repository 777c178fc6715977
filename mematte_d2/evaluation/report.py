"""Per-image records, their data-set summary, and the CSV / JSON / table they are written as.

A record is a flat dict per image. Metric values follow compute_matting_metrics except MSE,
which is stored as "MSE_x1e3" = MSE x 1000, the number papers print under "MSE (10^-3)".
Summary: metrics, keep ratio and time are means over images (NaN values skipped; NaN when no
image has one), "peak_memory_mb" is the largest per-image peak, "num_images" the count.
"""

import csv
import json
import math
from collections import OrderedDict
from collections.abc import Iterable

from tabulate import tabulate

METRIC_KEYS = ("SAD", "MSE_x1e3", "Grad", "Conn")
MEAN_KEYS = (*METRIC_KEYS, "keep_ratio", "time")
RECORD_COLUMNS = (
    "image_id", "file_name", "height", "width", *METRIC_KEYS, "keep_ratio", "time",
    "peak_memory_mb",
)
_HEADERS = {
    "num_images": "images", "MSE_x1e3": "MSE (1e-3)", "keep_ratio": "keep ratio",
    "time": "time (s)", "peak_memory_mb": "peak mem (MB, max)",
}


def metrics_to_record(metrics: dict[str, float]) -> dict[str, float]:
    """compute_matting_metrics output -> record columns (MSE scaled to MSE_x1e3)."""
    return {
        "SAD": metrics["SAD"], "MSE_x1e3": metrics["MSE"] * 1e3,
        "Grad": metrics["Grad"], "Conn": metrics["Conn"],
    }


def _finite(values: Iterable) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(float(v))]


def summarize(records: list[dict]) -> "OrderedDict[str, float]":
    """Data-set summary of the columns the records carry (see the module docstring)."""
    present = set(records[0]) if records else set(METRIC_KEYS)
    summary: OrderedDict[str, float] = OrderedDict()
    for key in MEAN_KEYS:
        if key in present:
            values = _finite(r[key] for r in records)
            summary[key] = math.fsum(values) / len(values) if values else math.nan
    if "peak_memory_mb" in present:
        values = _finite(r["peak_memory_mb"] for r in records)
        summary["peak_memory_mb"] = max(values) if values else math.nan
    summary["num_images"] = len(records)
    return summary


def format_table(summary: dict) -> str:
    """One-row table of a summary, metrics to 4 significant digits."""
    headers = [_HEADERS.get(k, k) for k in summary]
    row = [v if k == "num_images" else f"{v:.4g}" for k, v in summary.items()]
    return tabulate([row], headers=headers, tablefmt="pipe", stralign="right")


def _csv_value(value):
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return value


def write_csv(path: str, records: list[dict], open_fn=open) -> None:
    """Per-image CSV with the RECORD_COLUMNS the records carry (NaN written as empty)."""
    columns = [c for c in RECORD_COLUMNS if records and c in records[0]]
    with open_fn(path, "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for record in records:
            writer.writerow([_csv_value(record.get(c)) for c in columns])


def write_json(path: str, summary: dict, open_fn=open, **info) -> None:
    """Summary plus `info` (data set, region, ...) as JSON; NaN becomes null."""
    clean = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in summary.items()}
    with open_fn(path, "w") as f:
        json.dump({**info, "metrics": clean}, f, indent=2)
        f.write("\n")
