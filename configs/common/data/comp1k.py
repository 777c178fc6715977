"""Composition-1K: one on-the-fly composition per COCO train2014 background (82,783 per epoch,
the release's pairing) for training, the 1,000-image test set."""

from ._matting import matting_dataloader

dataloader = matting_dataloader("comp1k_train", "comp1k_test")
