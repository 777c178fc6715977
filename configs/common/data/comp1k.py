"""Composition-1K: 43,100 on-the-fly compositions for training, the 1,000-image test set."""

from ._matting import matting_dataloader

dataloader = matting_dataloader("comp1k_train", "comp1k_test")
