"""The default training crops are distributed as the authors' release's.

tests/fixtures/release_crops_stats.json holds per-crop statistics of the release's own training
pipeline run on the foreground set of ``release_crops.write_foreground_set`` (see its "about").
Here the default MattingTrainMapper runs on the same set, paired the same way, and each
statistic's two-sample Kolmogorov-Smirnov distance to the release's must be small.
"""

import json

import numpy as np
import pytest
from release_crops import FIXTURE, STATISTICS, crop_statistics, write_foreground_set
from scipy.stats import ks_2samp

from mematte_d2.data import MattingTrainMapper
from mematte_d2.data.datasets import load_composition_dicts

CROP = 512


@pytest.fixture(scope="module")
def reference() -> dict[str, list[float]]:
    return json.loads(FIXTURE.read_text())["statistics"]


@pytest.fixture(scope="module")
def dicts(tmp_path_factory) -> list[dict]:
    dirs = write_foreground_set(tmp_path_factory.mktemp("release_crops"))
    return load_composition_dicts(str(dirs["fg"]), str(dirs["alpha"]), str(dirs["bg"]))


def _our_statistics(dicts: list[dict], n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Statistics of the default mapper's crops of the first n samples (numpy's global RNG
    seeded as detectron2 seeds a worker, then restored)."""
    mapper = MattingTrainMapper(dataset_names=dicts, crop_size=CROP)
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        rows = []
        for record in dicts[:n]:
            out = mapper(record)
            rows.append(crop_statistics(out["alpha"][0].numpy(), out["trimap"][0].numpy()))
    finally:
        np.random.set_state(state)
    return {key: np.array([row[key] for row in rows]) for key in STATISTICS}


def _distances(ours: dict, reference: dict) -> dict[str, float]:
    return {key: float(ks_2samp(ours[key], reference[key]).statistic) for key in STATISTICS}


def test_fixture_holds_400_release_crops(reference):
    assert set(reference) == set(STATISTICS)
    assert all(len(values) == 400 for values in reference.values())


@pytest.mark.integration  # 400 runs of the training pipeline
def test_400_crops_match_the_release_distribution(dicts, reference):
    distances = _distances(_our_statistics(dicts, 400), reference)
    assert max(distances.values()) < 0.15, distances


def test_40_crops_are_not_far_from_the_release_distribution(dicts, reference):
    """A quick version: two samples of 40 and 400 from one distribution are farther apart
    than 1.95 sqrt((40 + 400) / (40 * 400)) = 0.32 with probability 0.001 (the asymptotic KS
    bound), so this catches a broken step (a crop off the unknown band, a band of the
    wrong scale), not small shifts; the 400-crop test above does that."""
    distances = _distances(_our_statistics(dicts, 40), reference)
    assert max(distances.values()) < 0.32, distances
