"""The bundled synthetic set (python -m mematte_d2.data.synthetic); small crops for CPU runs."""

from ._matting import matting_dataloader

dataloader = matting_dataloader(
    "synthetic_train", "synthetic_test", crop_size=128, total_batch_size=4, num_workers=1,
    test_protocol="native",
)
