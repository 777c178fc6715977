"""UHR-395 (the paper's ultra-high-resolution set) train / test."""

from ._matting import matting_dataloader

dataloader = matting_dataloader("uhr395_train", "uhr395_test")
