"""Official SAD / MSE / Grad / Conn of a folder of predicted mattes (from any method).

    python tools/evaluate_folder.py --pred out/ --alpha Composition-1k/alpha_copy \\
        --trimap Composition-1k/trimaps [--region whole] [--output results/]

Files are matched by stem to the ground-truth alphas (a prediction may also be named
<stem>_alpha.*, a trimap <stem>_trimap.*). Mattes are read as 8-bit (first channel of colour
files; 16-bit rounded to 8). Ground truth without a readable, same-sized prediction and trimap
is listed and skipped; the exit code is then 1 (2 for a bad command line).
"""

import argparse
import math
import sys
from pathlib import Path

from tqdm import tqdm

from mematte_d2.evaluation.folder import evaluate_item, match_folders
from mematte_d2.evaluation.metrics import REGIONS
from mematte_d2.evaluation.report import format_table, summarize, write_csv, write_json
from mematte_d2.inference.io import ImageReadError

CSV_NAME = "matting_per_image.csv"
JSON_NAME = "matting_metrics.json"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mematte-evaluate-folder",
        description="Evaluate predicted alpha mattes with the official DIM matting metrics.",
    )
    p.add_argument("--pred", required=True, help="directory of predicted mattes")
    p.add_argument("--alpha", required=True, help="directory of ground-truth alpha mattes")
    p.add_argument("--trimap", required=True, help="directory of trimaps (0 / 128 / 255)")
    p.add_argument("--region", choices=REGIONS, default="unknown",
                   help="pixels the metrics sum over (default: trimap == 128, the official one)")
    p.add_argument("--snap-trimap", action="store_true",
                   help="map trimap values to 0/128/255 (<85, >=170 known) instead of rejecting "
                        "trimaps with other values")
    p.add_argument("--output", help=f"a .csv file for per-image results, or a directory for "
                                    f"{CSV_NAME} and {JSON_NAME}")
    return p


def _write_outputs(output: str, records: list[dict], summary: dict, args, skipped) -> None:
    out = Path(output)
    if out.suffix.lower() == ".csv":
        out.parent.mkdir(parents=True, exist_ok=True)
        write_csv(out, records)
        return
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / CSV_NAME, records)
    write_json(
        out / JSON_NAME, summary, region=args.region, pred=args.pred, alpha=args.alpha,
        trimap=args.trimap, skipped={stem: reason for stem, reason in skipped},
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        items, unclaimed = match_folders(Path(args.pred), Path(args.alpha), Path(args.trimap))
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not items:
        print(f"error: --alpha {args.alpha}: no ground-truth image files", file=sys.stderr)
        return 2

    skipped = [(item.stem, item.error) for item in items if item.error]
    records = []
    with tqdm([item for item in items if not item.error], desc="evaluating", unit="img") as bar:
        for item in bar:
            try:
                records.append(evaluate_item(item, args.region, args.snap_trimap))
            except (ImageReadError, ValueError) as e:
                skipped.append((item.stem, str(e)))
                continue
            bar.set_postfix_str(f"SAD {math.fsum(r['SAD'] for r in records) / len(records):.4g}")

    summary = summarize(records)
    if args.output and records:
        try:
            _write_outputs(args.output, records, summary, args, skipped)
        except OSError as e:
            print(f"error: --output {args.output}: {e}", file=sys.stderr)
            return 2
    print(f"{len(records)} of {len(items)} images evaluated ({args.region} region)")
    if records:
        print(format_table(summary))
    if unclaimed:
        names = ", ".join(p.name for p in unclaimed[:10]) + (" ..." if len(unclaimed) > 10 else "")
        print(f"note: {len(unclaimed)} predictions have no ground truth: {names}")
    if skipped:
        print(f"{len(skipped)} skipped:", file=sys.stderr)
        for stem, reason in skipped:
            print(f"  {stem}: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
