"""Weights files cannot run code: crafted `.pkl` / `.pth` files are refused by every reader
(files and URLs, plain loading and detectron2's checkpointer); legitimate detectron2 `.pkl`
files of numpy arrays still load."""

import collections
import io
import pickle

import numpy as np
import pytest
import torch
from detectron2.utils.file_io import PathManager
from hostile_weights import code_running_pickle, code_running_torch_file, detectron2_pkl
from iopath.common.file_io import PathHandler
from torch import nn

from mematte_d2.checkpoint import (
    CheckpointError,
    StrictCheckpointer,
    UnreadableCheckpointError,
    UnsafeCheckpointError,
    load_pickle,
    load_state_dict,
)

URL_PREFIX = "mematte-test-weights://"


class _FolderHandler(PathHandler):
    """`mematte-test-weights://NAME` is NAME in a folder set by the test: a URL without network."""

    folder = None

    def _get_supported_prefixes(self):
        return [URL_PREFIX]

    def _get_local_path(self, path, **kwargs):
        return str(self.folder / path[len(URL_PREFIX):])

    def _isfile(self, path, **kwargs):
        return (self.folder / path[len(URL_PREFIX):]).is_file()


PathManager.register_handler(_FolderHandler())


@pytest.fixture
def url_folder(tmp_path):
    _FolderHandler.folder = tmp_path
    return tmp_path


@pytest.mark.parametrize("via", ["system", "open"])
@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_code_running_pkl_is_refused_naming_the_file(tmp_path, via, protocol):
    marker = tmp_path / "pwned"
    path = code_running_pickle(tmp_path / "evil.pkl", marker, via, protocol)
    with pytest.raises(UnsafeCheckpointError, match=f"{path}: refused to load: it refers to "):
        load_state_dict(path)
    assert not marker.exists()


def test_code_running_pth_is_refused_naming_the_file(tmp_path):
    marker = tmp_path / "pwned"
    path = code_running_torch_file(tmp_path / "evil.pth", marker)
    with pytest.raises(UnsafeCheckpointError, match=f"{path}: refused to load: .*posix.system"):
        load_state_dict(path)
    assert not marker.exists()


def test_urls_are_read_safely(url_folder):
    marker = url_folder / "pwned"
    code_running_pickle(url_folder / "evil.pkl", marker)
    with pytest.raises(UnsafeCheckpointError, match="evil.pkl: refused to load"):
        load_state_dict(URL_PREFIX + "evil.pkl")
    checkpointer = StrictCheckpointer(nn.Linear(2, 1))
    with pytest.raises(UnsafeCheckpointError, match="evil.pkl: refused to load"):
        checkpointer.load(URL_PREFIX + "evil.pkl", checkpointables=[])
    assert not marker.exists()
    state = nn.Linear(2, 1).state_dict()
    detectron2_pkl(url_folder / "good.pkl", state)
    assert torch.equal(load_state_dict(URL_PREFIX + "good.pkl")["weight"], state["weight"])


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_detectron2_pkl_of_numpy_arrays_loads(tmp_path, protocol):
    state = collections.OrderedDict(
        weight=torch.randn(3, 4), half=torch.randn(5).half(), count=torch.tensor(7),
        flag=torch.tensor([True, False]),
    )
    path = detectron2_pkl(tmp_path / "zoo.pkl", state, protocol)
    loaded = load_state_dict(path)
    assert list(loaded) == list(state)
    for key, value in state.items():
        assert loaded[key].dtype == value.dtype and torch.equal(loaded[key], value)


def test_pkl_written_by_numpy_1_loads(tmp_path):
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    data = pickle.dumps({"model": {"w": array}, "__author__": "numpy 1"}, protocol=2)
    assert b"numpy._core.multiarray" in data
    path = tmp_path / "old.pkl"
    path.write_bytes(data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert torch.equal(load_state_dict(path)["w"], torch.from_numpy(array))


def test_python_2_pickle_of_an_array_loads():
    # what Python 2 wrote for {"w": float32 [1, 2]}: the dtype and data as byte strings (U)
    data = np.array([1.0, 2.0], "<f4").tobytes()
    py2 = (b"\x80\x02}U\x01wcnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85"
           b"U\x01b\x87R(K\x01K\x02\x85cnumpy\ndtype\nU\x02f4K\x00K\x01\x87R(K\x03U\x01<NNN"
           b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbK\x00U\x08" + data + b"tbs.")
    loaded = load_pickle(io.BytesIO(py2))
    assert loaded["w"].dtype == np.float32 and loaded["w"].tolist() == [1.0, 2.0]


@pytest.mark.parametrize("dtype", [object, [("a", "f4")], [("a", "O")], "U3"])
def test_arrays_other_than_plain_numeric_are_refused(tmp_path, dtype):
    path = tmp_path / "odd.pkl"
    path.write_bytes(pickle.dumps({"model": {"w": np.zeros(2, dtype=dtype)}}, protocol=2))
    refusal = f"{path}: refused to load: numpy dtype .* not a plain numeric type"
    with pytest.raises(UnsafeCheckpointError, match=refusal):
        load_state_dict(path)


def test_numpy_constructors_cannot_be_called_with_crafted_arguments(tmp_path):
    # numpy.ndarray((1,), object, <8 chosen bytes>) would be an object array of raw pointers
    crafted = b"cnumpy\nndarray\n((I1\ntcnumpy\ndtype\n(VO8\nI0\nI1\ntRC\x08AAAAAAAAtR."
    with pytest.raises(pickle.UnpicklingError):
        load_pickle(io.BytesIO(crafted))
    path = tmp_path / "crafted.pkl"
    path.write_bytes(crafted)
    with pytest.raises(CheckpointError, match=f"{path}: "):
        load_state_dict(path)


def test_odd_byte_encodings_are_refused():
    # _codecs.encode is allowed only for the Latin-1 bytes of old protocols
    crafted = b"c_codecs\nencode\n(Vabc\nVrot13\ntR."
    with pytest.raises(pickle.UnpicklingError, match="'rot13' .only latin1"):
        load_pickle(io.BytesIO(crafted))


def test_checkpointer_refuses_code_running_files_and_loads_detectron2_pkl(tmp_path):
    marker = tmp_path / "pwned"
    model = nn.Linear(2, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    checkpointer = StrictCheckpointer(model, str(tmp_path))
    for evil in (code_running_pickle(tmp_path / "evil.pkl", marker),
                 code_running_torch_file(tmp_path / "evil.pth", marker)):
        with pytest.raises(UnsafeCheckpointError, match=f"{evil}: refused to load"):
            checkpointer.load(str(evil), checkpointables=[])
    assert not marker.exists()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

    other = nn.Linear(2, 1)
    checkpointer.load(str(detectron2_pkl(tmp_path / "zoo.pkl", other.state_dict())),
                      checkpointables=[])
    assert all(torch.equal(other.state_dict()[k], v) for k, v in model.state_dict().items())


def test_checkpointer_refuses_pycls_files_without_unpickling_them(tmp_path):
    marker = tmp_path / "pwned"
    path = code_running_torch_file(tmp_path / "classifier.pyth", marker)
    with pytest.raises(CheckpointError, match=f"{path}: pycls .* not matting"):
        StrictCheckpointer(nn.Linear(2, 1)).load(str(path), checkpointables=[])
    assert not marker.exists()


def test_garbage_pth_is_unreadable_not_unsafe_and_no_advice_to_drop_weights_only(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("not weights")
    with pytest.raises(UnreadableCheckpointError, match=f"{path}: not a PyTorch checkpoint") as e:
        load_state_dict(path)
    assert "weights_only" not in str(e.value)
