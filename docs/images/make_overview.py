"""Draw docs/images/overview.png, the README's picture: input, trimap, alpha, routing map.

It runs the demo's model (``make demo`` writes output/demo/model_final.pth) on one image of the
synthetic test set:

    python docs/images/make_overview.py --weights output/demo/model_final.pth
"""

import argparse
import sys
from pathlib import Path

import cv2

from mematte_d2 import model_zoo
from mematte_d2.cli.demo import DEMO_CONFIG, sheet_row
from mematte_d2.config import load_config
from mematte_d2.data import get_matting_dataset_dicts
from mematte_d2.data.synthetic import ensure_synthetic_dataset
from mematte_d2.engine import test_dataset_names
from mematte_d2.engine.visualize import titled_sheet
from mematte_d2.inference import MattingPredictor
from mematte_d2.utils.image_io import read_image, read_plane, read_trimap

KEEP_RATIO = 0.25


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="the demo's model_final.pth")
    parser.add_argument("--index", type=int, default=3, help="which test image (3: hair strands)")
    parser.add_argument("--output", default=str(Path(__file__).with_name("overview.png")))
    args = parser.parse_args(argv)
    ensure_synthetic_dataset()
    cfg = load_config(model_zoo.get_config_file(DEMO_CONFIG), [])
    record = get_matting_dataset_dicts(test_dataset_names(cfg)[0])[args.index]
    predictor = MattingPredictor(cfg, args.weights, device="cpu", max_memory=None)
    image = read_image(record["file_name"])
    tiles, _, _ = sheet_row(predictor, image, read_trimap(record["trimap_file"]),
                            read_plane(record["alpha_file"]), keep_ratio=KEEP_RATIO)
    titles = ["input", "trimap", "predicted alpha", f"routing, keep ratio {KEEP_RATIO:g}"]
    sheet = titled_sheet(titles, [[tiles[0], tiles[1], tiles[2], tiles[5]]])
    cv2.imwrite(args.output, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
