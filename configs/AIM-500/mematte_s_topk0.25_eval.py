"""Evaluate a MEMatte ViT-S checkpoint on AIM-500 (whole-image metrics as the set defines):
    tools/lazyconfig_train_net.py --config-file configs/AIM-500/mematte_s_topk0.25_eval.py \
        --eval-only train.init_checkpoint=/path/to/model.pth
"""

from detectron2.config import LazyConfig

dataloader, lr_multiplier, model, optimizer, train = LazyConfig.load_rel(
    "../Composition-1K/mematte_s_topk0.25.py",
    ("dataloader", "lr_multiplier", "model", "optimizer", "train"),
)

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]

dataloader.test.dataset = "aim500_test"  # the evaluator follows (an interpolation)
model.teacher_backbone = None
train.output_dir = "./output/aim500_mematte_s_topk0.25"
