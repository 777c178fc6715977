"""detectron2 DatasetEvaluator for alpha matting: official metrics, keep ratio, time, memory.

Each prediction is first turned into the 8-bit PNG its protocol saves (the input's "protocol",
set by the test mapper; see :mod:`~mematte_d2.evaluation.protocols`); the metrics are then those
of compute_matting_metrics on (prediction PNG, ground-truth PNG, trimap).
"""

import itertools
import logging
import math
import os
from collections import OrderedDict

import numpy as np
import torch
from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm
from detectron2.utils.file_io import PathManager

from mematte_d2.utils.image_io import alpha_to_png_array, write_png
from mematte_d2.utils.trimap import trimap_to_uint8

from .metrics import REGIONS, compute_matting_metrics
from .peak_memory import PeakMemoryMeter
from .protocols import PREDICTION_PNG
from .report import format_table, metrics_to_record, summarize, write_csv, write_json

logger = logging.getLogger(__name__)

CSV_NAME = "matting_per_image.csv"
JSON_NAME = "matting_metrics.json"
PREDICTIONS_DIR = "predictions"


def _image_plane(tensor, what: str, image_id) -> torch.Tensor:
    """A 1xHxW (or HxW) tensor or array as an HxW float tensor on its device."""
    if not isinstance(tensor, torch.Tensor):
        tensor = torch.as_tensor(np.asarray(tensor))
    if tensor.dim() == 3 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() != 2:
        shape = tuple(tensor.shape)
        raise ValueError(f"image {image_id}: {what} must be 1xHxW or HxW, got {shape}")
    return tensor.float()


def _image_id(item: dict):
    if "image_id" in item:
        return item["image_id"]
    if "file_name" in item:
        return os.path.splitext(os.path.basename(item["file_name"]))[0]
    raise KeyError("MattingEvaluator: an input has neither 'image_id' nor 'file_name'")


def _keep_ratio(value) -> float:
    """An output's mean keep ratio; 1.0 for an empty tensor (a model without routers sends
    every token to global attention), NaN when the output has none."""
    if isinstance(value, torch.Tensor) and value.numel() == 0:
        return 1.0
    return _scalar(value)


def _scalar(value) -> float:
    """Mean of a number or tensor as a float; NaN for None or an empty tensor."""
    if value is None:
        return math.nan
    if isinstance(value, torch.Tensor):
        return float(value.float().mean()) if value.numel() else math.nan
    return float(value)


class MattingEvaluator(DatasetEvaluator):
    """Official SAD / MSE / Grad / Conn plus keep ratio, time and peak memory per image.

    `evaluate()` returns {"matting": {"SAD", "MSE_x1e3", "Grad", "Conn", "keep_ratio", "time",
    "peak_memory_mb", "num_images"}} on the main process ({} on the others): metric means
    (MSE_x1e3 = MSE x 1000, the number papers print), the mean router keep ratio (1.0 for a
    dense model, whose outputs report no routers: every token attends globally; NaN when the
    outputs have no "keep_ratio"), mean model seconds per image (the outputs'
    "inference_time", which :class:`~mematte_d2.evaluation.TimedModel` adds; NaN when missing)
    and the largest per-image peak memory in MiB. Peak memory per image is the peak since the
    previous `process()` call, i.e. the model call and the loading of its batch: CUDA
    allocations for CUDA outputs, the process's peak RSS on CPU (shared by a batch).
    """

    def __init__(
        self,
        dataset_name: str,
        output_dir: str | None = None,
        distributed: bool = True,
        save_predictions: bool = False,
        region: str | None = None,
    ):
        """
        Args:
            dataset_name: registered data set; its metadata's `eval_region` is the default region.
            output_dir: where matting_per_image.csv, matting_metrics.json and, with
                `save_predictions`, predictions/<image_id>.png are written (None: nothing).
            distributed: gather the per-image results of all ranks to the main process.
            region: "unknown" (trimap == 128, the official metric) or "whole" (every pixel).
        """
        self._dataset_name = dataset_name
        self._output_dir = output_dir
        self._distributed = distributed
        self._save_predictions = save_predictions
        if region is None:
            region = MetadataCatalog.get(dataset_name).get("eval_region", "unknown")
        if region not in REGIONS:
            raise ValueError(f"MattingEvaluator: region must be one of {REGIONS}, got {region!r}")
        if save_predictions and not output_dir:
            raise ValueError("MattingEvaluator: save_predictions needs an output_dir")
        self._region = region
        self._memory = PeakMemoryMeter()
        self._records: list[dict] = []

    def reset(self):
        self._records = []
        if self._save_predictions:
            PathManager.mkdirs(os.path.join(self._output_dir, PREDICTIONS_DIR))
        self._memory.reset()

    def process(self, inputs, outputs):
        peaks = {}  # one reading per device: the batch's model call
        for item, output in zip(inputs, outputs):
            alpha = output["alpha"]
            device = alpha.device if isinstance(alpha, torch.Tensor) else torch.device("cpu")
            if device not in peaks:
                peaks[device] = self._memory.peak_bytes(device)
            record = self._evaluate_one(item, output)
            record["peak_memory_mb"] = peaks[device] / 2**20
            self._records.append(record)
        self._memory.reset()

    def _evaluate_one(self, item: dict, output: dict) -> dict:
        image_id = _image_id(item)
        for key, where in (("alpha", "inputs (ground truth)"), ("trimap", "inputs")):
            if key not in item:
                raise KeyError(f"MattingEvaluator: image {image_id} has no {key!r} in its {where}")
        gt = _image_plane(item["alpha"], "ground-truth alpha", image_id).cpu()
        trimap = _image_plane(item["trimap"], "trimap", image_id).cpu()
        pred = _image_plane(output["alpha"], "predicted alpha", image_id).detach().cpu()
        finite = torch.isfinite(pred)
        if not bool(finite.all()):
            raise ValueError(
                f"image {image_id}: predicted alpha has {int(finite.numel() - finite.sum())} "
                "non-finite (NaN or infinite) values"
            )
        if not pred.shape == gt.shape == trimap.shape:
            raise ValueError(
                f"image {image_id}: predicted alpha {tuple(pred.shape)}, ground truth "
                f"{tuple(gt.shape)} and trimap {tuple(trimap.shape)} must have one HxW size"
            )
        if gt.numel() and not 0.0 <= float(gt.min()) <= float(gt.max()) <= 1.0:
            raise ValueError(f"image {image_id}: ground-truth alpha must be in [0, 1] (PNG / 255)")
        protocol = item.get("protocol", "native")
        if protocol not in PREDICTION_PNG:
            raise ValueError(f"image {image_id}: unknown evaluation protocol {protocol!r} "
                             f"(known: {', '.join(PREDICTION_PNG)})")
        pred_png = PREDICTION_PNG[protocol](pred, trimap)
        gt_png = alpha_to_png_array(gt.numpy())
        trimap_u8 = trimap_to_uint8(trimap.numpy())
        if self._save_predictions:
            name = str(image_id).replace(os.sep, "_") + ".png"
            write_png(os.path.join(self._output_dir, PREDICTIONS_DIR, name), pred_png)
        metrics = compute_matting_metrics(pred_png, gt_png, trimap_u8, self._region)
        return {
            "image_id": image_id,
            "file_name": item.get("file_name", ""),
            "height": int(gt.shape[0]),
            "width": int(gt.shape[1]),
            **metrics_to_record(metrics),
            "keep_ratio": _keep_ratio(output.get("keep_ratio")),
            "time": _scalar(output.get("inference_time")),
        }

    def evaluate(self):
        records = self._records
        if self._distributed:
            comm.synchronize()
            records = list(itertools.chain(*comm.gather(records, dst=0)))
            if not comm.is_main_process():
                return {}
        records = self._deduplicate(records)
        if not records:
            logger.warning(f"MattingEvaluator: no images were processed on {self._dataset_name}")
            return {}
        summary = summarize(records)
        if self._output_dir:
            PathManager.mkdirs(self._output_dir)
            write_csv(os.path.join(self._output_dir, CSV_NAME), records, PathManager.open)
            write_json(
                os.path.join(self._output_dir, JSON_NAME), summary, PathManager.open,
                dataset=self._dataset_name, region=self._region,
            )
        logger.info(
            f"Matting metrics on {self._dataset_name} ({self._region} region):\n"
            + format_table(summary)
        )
        return OrderedDict(matting=summary)

    @staticmethod
    def _deduplicate(records: list[dict]) -> list[dict]:
        seen, unique = set(), []
        for record in records:
            if record["image_id"] not in seen:
                seen.add(record["image_id"])
                unique.append(record)
        if len(unique) < len(records):
            logger.warning(
                f"MattingEvaluator: dropped {len(records) - len(unique)} duplicate image ids"
            )
        return unique
