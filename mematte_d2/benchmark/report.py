"""Benchmark outputs: rows of measurements as a Markdown table, a CSV file and a PNG plot."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

GB = 2**30
# fp32 weight, gradient and AdamW's two moments.
ADAM_BYTES_PER_PARAM = 16

INFERENCE_COLUMNS = (
    "model", "size", "megapixels", "device", "dtype", "keep_ratio", "tile_size", "threads",
    "trimap", "unknown_fraction", "skip_known_tiles", "decoder_calls", "decoded_pixels",
    "decoded_area", "status", "gflops", "latency_s", "latency_min_s", "timed_runs", "warmup_s",
    "peak_memory_gb", "peak_memory_lower_bound_gb", "memory_before_gb", "estimated_peak_gb",
    "tokens_total", "tokens_routed_per_block", "tokens_routed", "load_1m",
)
TRAIN_COLUMNS = (
    "model", "teacher", "batch_size", "crop_size", "device", "amp_dtype", "grad_scaler",
    "threads", "status", "iters_per_s",
    "step_s", "timed_runs", "peak_memory_gb", "peak_memory_lower_bound_gb", "memory_before_gb",
    "params_trainable_m", "params_frozen_m", "params_routing_m", "routing_state_gb",
    "saved_by_routing_gb", "saved_by_global_blocks_gb", "load_1m",
)
# (MEMatte, ViTMatte) pairs compared in the ratio table: against this project's ViTMatte
# (fused attention) and against the released implementation's dense attention.
PAIRS = (
    ("mematte_s", "vitmatte_s"), ("mematte_s", "vitmatte_s_dense"),
    ("mematte_b", "vitmatte_b"), ("mematte_b", "vitmatte_b_dense"),
)


def _gb(value: int | None) -> float | None:
    return None if value is None else round(value / GB, 3)


def inference_row(case, result: dict) -> dict:
    """Flat row of one inference case and its result (None where not measured)."""
    routed = result.get("tokens_routed")
    peak = result.get("peak_memory_bytes")
    decoded = result.get("decoded_pixels")
    return {
        "model": case.model,
        "size": case.size,
        "megapixels": round(case.size * case.size / 1e6, 3),
        "device": case.device,
        "dtype": case.dtype,
        "keep_ratio": case.keep_ratio,
        "tile_size": result.get("tile_size", case.tile_size),
        "threads": case.threads,
        "trimap": case.trimap,
        "unknown_fraction": _round(result.get("unknown_fraction")),
        "skip_known_tiles": result.get("skip_known_tiles", case.skip_known_tiles),
        "decoder_calls": result.get("decoder_calls"),
        "decoded_pixels": decoded,
        "decoded_area": None if decoded is None else round(decoded / case.size**2, 3),
        "status": result["status"],
        "gflops": _significant(result.get("gflops")),
        "latency_s": _round(result.get("latency_s")),
        "latency_min_s": _round(result.get("latency_min_s")),
        "timed_runs": result.get("timed_runs"),
        "warmup_s": _round(result.get("warmup_s")),
        "peak_memory_gb": _gb(peak),
        "peak_memory_lower_bound_gb": _gb(result.get("peak_memory_lower_bound_bytes")),
        "memory_before_gb": _gb(result.get("memory_before_bytes")),
        "estimated_peak_gb": _gb(result.get("estimated_peak_bytes")),
        "tokens_total": result.get("tokens_total"),
        "tokens_routed_per_block": round(sum(routed) / len(routed), 1) if routed else None,
        "tokens_routed": ";".join(str(n) for n in routed) if routed else None,
        "load_1m": _round(result.get("load_1m"), 2),
    }


def train_row(case, result: dict) -> dict:
    """Flat row of one training case and its result."""
    def millions(key: str) -> float | None:
        return None if key not in result else round(result[key] / 1e6, 2)

    return {
        "model": case.model,
        "teacher": case.teacher,
        "batch_size": case.batch_size,
        "crop_size": case.crop_size,
        "device": case.device,
        "amp_dtype": result.get("amp_dtype"),
        "grad_scaler": result.get("grad_scaler"),
        "threads": case.threads,
        "status": result["status"],
        "iters_per_s": _round(result.get("iters_per_s"), 4),
        "step_s": _round(result.get("step_s")),
        "timed_runs": result.get("timed_runs"),
        "peak_memory_gb": _gb(result.get("peak_memory_bytes")),
        "peak_memory_lower_bound_gb": _gb(result.get("peak_memory_lower_bound_bytes")),
        "memory_before_gb": _gb(result.get("memory_before_bytes")),
        "params_trainable_m": millions("params_trainable"),
        "params_frozen_m": millions("params_frozen"),
        "params_routing_m": millions("params_routing"),
        "routing_state_gb": _gb(ADAM_BYTES_PER_PARAM * result["params_routing"])
        if "params_routing" in result else None,
        "saved_by_routing_gb": _gb(result.get("saved_by_routing_bytes")),
        "saved_by_global_blocks_gb": _gb(result.get("saved_by_global_blocks_bytes")),
        "load_1m": _round(result.get("load_1m"), 2),
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _significant(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else float(f"{value:.{digits}g}")


def write_csv(rows: Sequence[dict], path: Path, columns: Sequence[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def _memory_cell(row: dict) -> str:
    if row["peak_memory_gb"] is not None:
        return f"{row['peak_memory_gb']:.2f}"
    if row.get("peak_memory_lower_bound_gb") is not None:
        return f">= {row['peak_memory_lower_bound_gb']:.2f} (when stopped)"
    return "-"


def _markdown(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


def _trimap_cell(row: dict) -> str:
    share = row["unknown_fraction"]
    return row["trimap"] if share is None else f"{row['trimap']} ({share:.0%})"


def _decoded_cell(row: dict) -> str:
    if row["decoder_calls"] is None:
        return "-"
    return f"{row['decoder_calls']} ({row['decoded_area']:.2f})"


def inference_markdown(rows: Sequence[dict]) -> str:
    """Results table plus, where both were measured, MEMatte / ViTMatte ratios per size."""
    header = ("Model", "Size", "MP", "Device", "dtype", "Trimap (unknown share)",
              "Skip known tiles", "Decoder calls (area / image)", "GFLOPs", "Latency s (median)",
              "Peak memory GB",
              "Before forward GB", "Estimated peak GB", "Tokens routed / block", "Load at start",
              "Status")
    lines = []
    for r in rows:
        routed = r["tokens_routed_per_block"]
        tokens = "-" if r["tokens_total"] is None else (
            f"{routed:.0f} / {r['tokens_total']}" if routed is not None
            else f"all {r['tokens_total']} (no routing)")
        lines.append((r["model"], f"{r['size']}x{r['size']}", _cell(r["megapixels"]),
                      r["device"], r["dtype"], _trimap_cell(r), _cell(r["skip_known_tiles"]),
                      _decoded_cell(r), _cell(r["gflops"]), _cell(r["latency_s"]),
                      _memory_cell(r),
                      _cell(r["memory_before_gb"]), _cell(r["estimated_peak_gb"]), tokens,
                      _cell(r["load_1m"]), r["status"]))
    text = _markdown(header, lines)
    ratios = ratio_lines(rows)
    if ratios:
        text += "\n\n" + _markdown(
            ("Pair", "Size", "dtype", "Trimap, skip known tiles", "Memory ratio",
             "Working-memory ratio", "Latency ratio",
             "GFLOPs ratio"),
            ratios,
        )
        text += ("\n\nMemory ratio: peak / peak. Working-memory ratio: (peak - before forward) / "
                 "(peak - before forward), i.e. without the interpreter, torch and the weights.")
    return text


def ratio_lines(rows: Sequence[dict]) -> list[tuple[str, ...]]:
    """MEMatte / ViTMatte peak-memory, working-memory and latency ratios for sizes where both
    succeeded."""
    def key(r: dict, model: str) -> tuple:
        return model, r["size"], r["device"], r["dtype"], r["trimap"], r["skip_known_tiles"]

    ok = {key(r, r["model"]): r for r in rows if r["status"] == "ok"}
    lines = []
    for (model, size, device, dtype, *_), r in ok.items():
        for ours, base in PAIRS:
            other = ok.get(key(r, base))
            if model != ours or other is None:
                continue
            working = (r["peak_memory_gb"] - r["memory_before_gb"]) / max(
                other["peak_memory_gb"] - other["memory_before_gb"], 1e-9)
            flops = (f"{r['gflops'] / other['gflops']:.2f}"
                     if r.get("gflops") and other.get("gflops") else "-")
            lines.append((f"{ours} / {base}", f"{size}x{size}", f"{device} {dtype}",
                          f"{r['trimap']}, {_cell(r['skip_known_tiles'])}",
                          f"{r['peak_memory_gb'] / other['peak_memory_gb']:.2f}",
                          f"{working:.2f}", f"{r['latency_s'] / other['latency_s']:.2f}", flops))
    return lines


def train_markdown(rows: Sequence[dict]) -> str:
    header = ("Model", "Teacher", "Batch x crop", "Device", "Autocast", "it/s", "Step s (median)",
              "Peak memory GB", "Before first step GB", "Trainable / frozen params M",
              "Router + refiner params M", "Router + refiner weights, grads, Adam GB",
              "Router + refiner saved activations GB", "Global blocks' saved activations GB",
              "Load at start", "Status")
    lines = [(r["model"], "yes" if r["teacher"] else "no",
              f"{r['batch_size']} x {r['crop_size']}^2", r["device"],
              f"{r['amp_dtype']}{' + GradScaler' if r['grad_scaler'] else ''}",
              _cell(r["iters_per_s"]),
              _cell(r["step_s"]), _memory_cell(r), _cell(r["memory_before_gb"]),
              f"{_cell(r['params_trainable_m'])} / {_cell(r['params_frozen_m'])}",
              _cell(r["params_routing_m"]), _cell(r["routing_state_gb"]),
              _cell(r["saved_by_routing_gb"]), _cell(r["saved_by_global_blocks_gb"]),
              _cell(r["load_1m"]), r["status"]) for r in rows]
    return _markdown(header, lines)


def plot_inference(rows: Sequence[dict], path: Path, title: str = "") -> None:
    """Peak memory and latency against megapixels, one line per model / device / dtype."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[dict]] = {}
    for r in rows:
        if r["status"] == "ok":
            series.setdefault(f"{r['model']} ({r['device']} {r['dtype']})", []).append(r)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, points in series.items():
        points = sorted(points, key=lambda r: r["megapixels"])
        mp = [r["megapixels"] for r in points]
        axes[0].plot(mp, [r["peak_memory_gb"] for r in points], marker="o", label=label)
        axes[1].plot(mp, [r["latency_s"] for r in points], marker="o", label=label)
    for ax, ylabel in zip(axes, ("peak memory (GB)", "latency (s, median)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("megapixels")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    if series:
        axes[0].legend(fontsize=8)
    failed = [f"{r['model']} {r['size']}: {r['status']}" for r in rows if r["status"] != "ok"]
    if failed:
        fig.text(0.01, 0.01, "not plotted: " + "; ".join(failed), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04 if failed else 0, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
