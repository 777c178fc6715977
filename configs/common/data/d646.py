"""Distinctions-646 train / test."""

from ._matting import matting_dataloader

dataloader = matting_dataloader("d646_train", "d646_test")
