"""Official SAD / MSE / Grad / Conn of a folder of predicted mattes (from any method).

    python tools/evaluate_folder.py --pred out/ --alpha Composition-1k/alpha_copy \\
        --trimap Composition-1k/trimaps [--region whole] [--output results/]

Files are matched by stem to the ground-truth alphas (a prediction may also be named
<stem>_alpha.*, a trimap <stem>_trimap.*). Mattes are read as 8-bit (first channel of colour
files; 16-bit and float rounded to 8; float outside [0, 1], 16-bit holding only 0-255 and
NaN refused). Ground truth whose prediction or trimap is missing, unreadable, of another size
or fails in any other way is listed and skipped; the exit code is then 1 (2 for a bad command
line or an --output that cannot be written, checked before any file is read). Results are
written to a temporary file then renamed. File names that are not valid UTF-8 are written and
printed with their undecodable bytes as \\xNN, so one such name never loses the results.
"""

import argparse
import io
import math
import sys
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from mematte_d2.cli.common import OneLineErrorParser, check_writable, checked, describe_error
from mematte_d2.evaluation.folder import evaluate_item, match_folders
from mematte_d2.evaluation.metrics import REGIONS
from mematte_d2.evaluation.report import format_table, summarize, write_csv, write_json
from mematte_d2.inference.options import check_max_pixels
from mematte_d2.utils.atomic import atomic_write
from mematte_d2.utils.image_io import MAX_PIXELS

CSV_NAME = "matting_per_image.csv"
JSON_NAME = "matting_metrics.json"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineErrorParser(
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
    p.add_argument("--max-pixels", type=checked(int, check_max_pixels), default=MAX_PIXELS,
                   help="refuse images whose header claims more pixels, before decoding "
                        f"(default {MAX_PIXELS})")
    p.add_argument("--output", help=f"a .csv file for per-image results, or a directory for "
                                    f"{CSV_NAME} and {JSON_NAME}")
    return p


def printable(text: str) -> str:
    """`text` with the undecodable bytes of file names (surrogate escapes) as \\xNN, so that
    any UTF-8 file or stream can hold it."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # surrogates no file name decodes to
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _say(text: str, file=None) -> None:
    print(printable(text), file=file or sys.stdout)


@contextmanager
def _atomic_text(path, mode: str = "w"):
    """A text file for write_csv / write_json that appears at `path` only once complete."""
    buffer = io.StringIO()
    yield buffer
    atomic_write(path, lambda f: f.write(printable(buffer.getvalue()).encode()))


def _output_paths(output: str) -> tuple[Path, Path | None]:
    """(CSV path, JSON path or None) of --output, its folder created; ValueError if unusable."""
    out = Path(output)
    folder = out.parent if out.suffix.lower() == ".csv" else out
    if out.suffix.lower() == ".csv" and out.is_dir():
        raise ValueError(f"--output {output}: is a directory, not a .csv file")
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--output {output}: {folder} exists and is not a directory")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--output {output}: cannot create {folder} ({e.strerror or e})") from e
    check_writable(folder, f"--output {output}")
    if out.suffix.lower() == ".csv":
        return out, None
    return out / CSV_NAME, out / JSON_NAME


def _write_outputs(paths, records: list[dict], summary: dict, args, skipped) -> None:
    csv_path, json_path = paths
    write_csv(csv_path, records, _atomic_text)
    if json_path is not None:
        write_json(
            json_path, summary, _atomic_text, region=args.region, pred=printable(args.pred),
            alpha=printable(args.alpha), trimap=printable(args.trimap),
            skipped={printable(stem): printable(reason) for stem, reason in skipped},
        )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        items, unclaimed = match_folders(Path(args.pred), Path(args.alpha), Path(args.trimap))
        paths = _output_paths(args.output) if args.output else None
    except (FileNotFoundError, ValueError) as e:
        _say(f"error: {e}", sys.stderr)
        return 2
    if not items:
        _say(f"error: --alpha {args.alpha}: no ground-truth image files", sys.stderr)
        return 2

    skipped = [(item.stem, item.error) for item in items if item.error]
    records = []
    with tqdm([item for item in items if not item.error], desc="evaluating", unit="img") as bar:
        for item in bar:
            try:
                records.append(
                    evaluate_item(item, args.region, args.snap_trimap, args.max_pixels)
                )
            except Exception as e:  # one bad file must not stop the evaluation
                skipped.append((item.stem, describe_error(e)))
                continue
            bar.set_postfix_str(f"SAD {math.fsum(r['SAD'] for r in records) / len(records):.4g}")

    summary = summarize(records)
    if paths and records:
        try:
            _write_outputs(paths, records, summary, args, skipped)
        except OSError as e:
            _say(f"error: {describe_error(e)}", sys.stderr)
            return 2
    print(f"{len(records)} of {len(items)} images evaluated ({args.region} region)")
    if records:
        print(format_table(summary))
    if unclaimed:
        names = ", ".join(p.name for p in unclaimed)
        _say(f"note: {len(unclaimed)} predictions have no ground truth: {names}")
    if skipped:
        print(f"{len(skipped)} skipped:", file=sys.stderr)
        for stem, reason in skipped:
            _say(f"  {stem}: {reason}", sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
