"""The main job: train a small MEMatte on the synthetic set on CPU and evaluate before/after.

Steps: load the quick-schedule config, generate the synthetic set if absent, evaluate the
untrained model, train, evaluate again, then write a report (metrics JSON, per-image CSVs, a
PNG sheet with titled columns: inputs, predictions and routing maps by the argmax rule and at
a fixed keep ratio) and print where it is.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from detectron2.utils.logger import setup_logger
from tabulate import tabulate

from mematte_d2 import model_zoo
from mematte_d2.config import ConfigError, load_config
from mematte_d2.data import get_matting_dataset_dicts
from mematte_d2.data.synthetic import ensure_synthetic_dataset
from mematte_d2.engine import MattingTrainer, test_dataset_names
from mematte_d2.engine.setup import save_config
from mematte_d2.engine.visualize import label_tile, titled_sheet
from mematte_d2.inference import MattingPredictor
from mematte_d2.inference.predictor import MattingResult
from mematte_d2.inference.render import routing_overlay
from mematte_d2.utils.image_io import read_image, read_plane, read_trimap

DEMO_CONFIG = "quick_schedules/mematte_tiny_synthetic.py"
METRICS = ("SAD", "MSE_x1e3", "Grad", "Conn")
SHEET_KEEP_RATIO = 0.25
SHEET_CAPTION = (
    "Red: tokens sent to global attention (the darker, the more routed blocks agree); each map "
    "gives the share routed. Argmax rule (the release's inference): a token is routed only where "
    "its router scores global attention above the light LTRM path, so the share is whatever the "
    "routers learned. Training meets the token budget with sampled (Gumbel) decisions, not with "
    "the argmax, so after a short run on toy data the argmax share can lie far from the budget, "
    "from none (an empty map) to more than the budget. Keep ratio "
    f"{SHEET_KEEP_RATIO:g} (predict --keep-ratio): the same router scores, the top "
    f"{SHEET_KEEP_RATIO:.0%} of the tokens of every routed block routed, which always shows where "
    "the routers rank tokens highest."
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", help=f"default: the shipped {DEMO_CONFIG}")
    parser.add_argument("--output", default="output/demo", help="report and checkpoint folder")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="key=value config overrides")
    return parser.parse_args(argv)


def _metrics(results: dict) -> dict:
    """The metrics of the (one) test set from results keyed by set name."""
    (per_set,) = results.values()
    return dict(per_set["matting"])


def _gray(plane: np.ndarray) -> np.ndarray:
    """HxW uint8 (0-255) or float (0-1) -> HxWx3 uint8."""
    if plane.dtype != np.uint8:
        plane = np.round(np.clip(plane, 0, 1) * 255).astype(np.uint8)
    return np.repeat(plane[..., None], 3, axis=2)


def _routing_tile(image: np.ndarray, result: MattingResult) -> np.ndarray:
    share = sum(result.tokens_routed) / max(1, len(result.tokens_routed) * result.num_tokens)
    return label_tile(routing_overlay(image, result.routing), f"{share:.0%} routed")


def sheet_titles(keep_ratio: float = SHEET_KEEP_RATIO) -> list[str]:
    """The column titles of the report sheet."""
    return ["input", "trimap", "predicted alpha", "ground truth", "routing: argmax rule",
            f"routing: keep ratio {keep_ratio:g}"]


def sheet_row(
    predictor: MattingPredictor,
    image: np.ndarray,
    trimap: np.ndarray,
    alpha: np.ndarray,
    keep_ratio: float = SHEET_KEEP_RATIO,
) -> tuple[list[np.ndarray], MattingResult, MattingResult]:
    """The tiles of one sheet row (see sheet_titles) and the two predictions they show: with
    the argmax rule and with the top `keep_ratio` of tokens routed in every routed block."""
    argmax = predictor.predict(image, trimap)
    fixed = predictor.predict(image, trimap, keep_ratio=keep_ratio)
    tiles = [image, _gray(trimap), _gray(argmax.alpha), _gray(alpha),
             _routing_tile(image, argmax), _routing_tile(image, fixed)]
    return tiles, argmax, fixed


def write_sheet(cfg, weights: str, path: Path, count: int = 4) -> None:
    """A PNG sheet of the first `count` test images with titled columns (sheet_titles)."""
    predictor = MattingPredictor(cfg, weights, device="cpu", max_memory=None)
    rows = []
    for record in get_matting_dataset_dicts(test_dataset_names(cfg)[0])[:count]:
        image = read_image(record["file_name"])
        rows.append(sheet_row(predictor, image, read_trimap(record["trimap_file"]),
                              read_plane(record["alpha_file"]))[0])
    sheet = titled_sheet(sheet_titles(), rows, SHEET_CAPTION)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        cfg = load_config(args.config_file or model_zoo.get_config_file(DEMO_CONFIG),
                          [f"train.output_dir={args.output}", *args.opts])
    except (ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    logger = setup_logger(name="mematte_d2")
    setup_logger(name="detectron2")
    root = ensure_synthetic_dataset()
    logger.info("synthetic data set: %s", root)

    out = Path(cfg.train.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out)
    torch.manual_seed(cfg.train.seed)

    trainer = MattingTrainer(cfg)
    trainer.resume_or_load(resume=False)
    test_set = test_dataset_names(cfg)[0]
    logger.info(
        "training set: %d compositions, test set: %d images",
        len(get_matting_dataset_dicts(cfg.dataloader.train.dataset)),
        len(get_matting_dataset_dicts(test_set)),
    )
    before_eval = MattingTrainer.build_evaluator(cfg, test_set, str(out / "eval_iter0"))
    before = _metrics(MattingTrainer.test(cfg, trainer.model, [before_eval]))
    after = _metrics(trainer.train())
    write_sheet(cfg, str(out / "model_final.pth"), out / "report_sheet.png")

    report = {"before_training": before, "after_training": after,
              "iterations": cfg.train.max_iter, "seconds": time.perf_counter() - start}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    rows = [[name, before.get(name), after.get(name)] for name in METRICS + ("keep_ratio",)]
    print(tabulate(rows, headers=["metric", "iteration 0", f"iteration {cfg.train.max_iter}"],
                   floatfmt=".4g"))
    final_dir = Path(cfg.train.output_dir) / "inference" / test_set
    print(f"\nreport: {out / 'report.json'}\nsheet:  {out / 'report_sheet.png'}\n"
          f"per-image metrics: {final_dir}\ncheckpoint: {out / 'model_final.pth'}\n"
          f"TensorBoard: tensorboard --logdir {out}\n"
          f"total time: {report['seconds'] / 60:.1f} min")
    if not after["SAD"] < before["SAD"]:
        print("error: SAD did not decrease during training", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
