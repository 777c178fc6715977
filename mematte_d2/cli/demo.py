"""The main job: train a small MEMatte on the synthetic set on CPU and evaluate before/after.

Steps: load the quick-schedule config, generate the synthetic set if absent, evaluate the
untrained model, train, evaluate again, then write a report (metrics JSON, per-image CSVs, a
PNG sheet of inputs, predictions and routing maps) and print where it is.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import torch
from detectron2.utils.logger import setup_logger
from tabulate import tabulate

from mematte_d2 import model_zoo
from mematte_d2.config import ConfigError, load_config
from mematte_d2.data import get_matting_dataset_dicts
from mematte_d2.data.synthetic import ensure_synthetic_dataset
from mematte_d2.engine import MattingTrainer, test_dataset_names
from mematte_d2.engine.setup import save_config
from mematte_d2.engine.visualize import matting_sheet_row, stack_rows

DEMO_CONFIG = "quick_schedules/mematte_tiny_synthetic.py"
METRICS = ("SAD", "MSE_x1e3", "Grad", "Conn")


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


def write_sheet(cfg, model: torch.nn.Module, path: Path, count: int = 4) -> None:
    """A PNG sheet: image, trimap, prediction, ground truth, routing map per router."""
    loader = MattingTrainer.build_test_loader(cfg, test_dataset_names(cfg)[0])
    rows = []
    model.eval()
    with torch.no_grad():
        for batch in loader:
            rows.append(matting_sheet_row(batch[0], model(batch)[0]))
            if len(rows) == count:
                break
    sheet = stack_rows(rows)
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
    write_sheet(cfg, trainer.model, out / "report_sheet.png")

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
