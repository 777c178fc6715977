"""evaluate_folder CLI: stem matching, skipped files listed, exit codes, outputs."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from file_limits import file_size_limit, read_only_folder
from hostile_files import leftovers, png_header_only
from PIL import Image

from mematte_d2.cli.evaluate_folder import main
from mematte_d2.evaluation import compute_matting_metrics

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SHAPE = (14, 17)


def case(seed: int, shape=SHAPE):
    rng = np.random.default_rng(seed)
    alpha = rng.integers(0, 256, shape, dtype=np.uint8)
    pred = np.clip(alpha.astype(int) + rng.integers(-40, 41, shape), 0, 255).astype(np.uint8)
    trimap = np.full(shape, 128, np.uint8)
    trimap[:3], trimap[-3:] = 0, 255
    alpha[:3], alpha[-3:] = 0, 255
    return pred, alpha, trimap


def write(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)


@pytest.fixture
def folders(tmp_path):
    """a: plain; b: <stem>_alpha / <stem>_trimap names; c: 16-bit TIFF prediction;
    d: prediction missing; e: trimap of another size; f: corrupt prediction; z: no ground truth."""
    root = tmp_path
    expected = {}
    for seed, stem in enumerate("abcdef"):
        pred, alpha, trimap = case(seed)
        write(root / "alpha" / f"{stem}.png", alpha)
        write(root / "trimap" / f"{stem}{'_trimap' if stem == 'b' else ''}.png",
              trimap if stem != "e" else trimap[:-1])
        if stem == "c":
            write(root / "pred" / "c.tif", pred.astype(np.uint16) * 257)  # 16-bit, same 8-bit
        elif stem == "f":
            (root / "pred" / "f.png").write_bytes(b"not a png")
        elif stem != "d":
            write(root / "pred" / f"{stem}{'_alpha' if stem == 'b' else ''}.png", pred)
        expected[stem] = compute_matting_metrics(pred, alpha, trimap)
    write(root / "pred" / "z.png", case(9)[0])
    return root, expected


def run(root: Path, *extra: str) -> int:
    return main(["--pred", str(root / "pred"), "--alpha", str(root / "alpha"),
                 "--trimap", str(root / "trimap"), *extra])


def test_matching_skipping_and_outputs(folders, capsys):
    root, expected = folders
    code = run(root, "--output", str(root / "out"))
    out, err = capsys.readouterr()
    assert code == 1
    assert "3 of 6 images evaluated" in out and "SAD" in out and "MSE (1e-3)" in out
    assert "note: 1 predictions have no ground truth: z.png" in out
    assert "3 skipped" in err
    assert "d: no prediction named d.* or d_alpha.*" in err
    assert "e: trimap e.png is 13x17, ground truth e.png is 14x17" in err
    assert "f:" in err and "not a readable image" in err

    with open(root / "out" / "matting_per_image.csv") as f:
        rows = {r["image_id"]: r for r in csv.DictReader(f)}
    assert sorted(rows) == ["a", "b", "c"]
    for stem, row in rows.items():
        assert float(row["SAD"]) == pytest.approx(expected[stem]["SAD"], rel=1e-12)
        assert float(row["Conn"]) == pytest.approx(expected[stem]["Conn"], rel=1e-12)
        assert float(row["MSE_x1e3"]) == pytest.approx(expected[stem]["MSE"] * 1e3, rel=1e-12)
    with open(root / "out" / "matting_metrics.json") as f:
        saved = json.load(f)
    assert saved["metrics"]["num_images"] == 3
    assert saved["metrics"]["Grad"] == pytest.approx(
        np.mean([expected[s]["Grad"] for s in "abc"]), rel=1e-12
    )
    assert sorted(saved["skipped"]) == ["d", "e", "f"]


def test_all_matched_exits_zero_and_writes_csv_file(tmp_path, capsys):
    pred, alpha, trimap = case(0)
    write(tmp_path / "pred" / "x.png", pred)
    write(tmp_path / "alpha" / "x.png", alpha)
    write(tmp_path / "trimap" / "x.png", trimap)
    assert run(tmp_path, "--region", "whole", "--output", str(tmp_path / "r" / "res.csv")) == 0
    with open(tmp_path / "r" / "res.csv") as f:
        (row,) = list(csv.DictReader(f))
    whole = compute_matting_metrics(pred, alpha, trimap, region="whole")
    assert float(row["SAD"]) == pytest.approx(whole["SAD"], rel=1e-12)
    assert "whole region" in capsys.readouterr().out


def test_trimap_with_other_codes_is_skipped_unless_snapped(tmp_path, capsys):
    pred, alpha, trimap = case(1)
    trimap[5, 5] = 127
    write(tmp_path / "pred" / "x.png", pred)
    write(tmp_path / "alpha" / "x.png", alpha)
    write(tmp_path / "trimap" / "x.png", trimap)
    assert run(tmp_path) == 1
    err = capsys.readouterr().err
    assert "x.png: trimap has values other than 0 / 128 / 255 (127 in 1 pixels)" in err
    assert run(tmp_path, "--snap-trimap") == 0


def test_bad_command_line_exits_two(tmp_path, capsys):
    (tmp_path / "pred").mkdir()
    (tmp_path / "trimap").mkdir()
    assert run(tmp_path) == 2
    err = capsys.readouterr().err
    assert "--alpha" in err and "no such directory" in err
    (tmp_path / "alpha").mkdir()
    assert run(tmp_path) == 2


def test_tools_script_runs(folders):
    root, _ = folders
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "evaluate_folder.py"), "--pred", str(root / "pred"),
         "--alpha", str(root / "alpha"), "--trimap", str(root / "trimap")],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "3 of 6 images evaluated" in proc.stdout


def test_mixed_batch_evaluates_every_good_file_and_names_each_bad_one(tmp_path, capsys):
    """Out-of-range float / 16-bit mattes, NaN, a decompression bomb, a 0/1/2 trimap."""
    expected, bad = {}, {}
    for seed, stem in enumerate(["good", "good_tif", "bomb", "f255", "u16", "nan", "labels"]):
        pred, alpha, trimap = case(seed)
        write(tmp_path / "alpha" / f"{stem}.png", alpha)
        write(tmp_path / "trimap" / f"{stem}.png", trimap)
        write(tmp_path / "pred" / f"{stem}.png", pred)
        expected[stem] = compute_matting_metrics(pred, alpha, trimap)
    (tmp_path / "pred" / "good_tif.png").unlink()
    write(tmp_path / "pred" / "good_tif.tif", case(1)[0].astype(np.float32) / 255)  # 0-1: fine
    (tmp_path / "pred" / "bomb.png").write_bytes(png_header_only(50000, 50000))
    bad["bomb"] = "limit of max_pixels=268,435,456"
    (tmp_path / "pred" / "f255.png").unlink()
    write(tmp_path / "pred" / "f255.tif", case(3)[0].astype(np.float32))
    bad["f255"] = "f255.tif: float values in [0, 2"
    write(tmp_path / "pred" / "u16.png", case(4)[0].astype(np.uint16))
    bad["u16"] = "u16.png: 16-bit file whose values are all <= 255"
    (tmp_path / "pred" / "nan.png").unlink()
    with_nan = case(5)[0].astype(np.float32) / 255
    with_nan[4, 4] = np.nan
    write(tmp_path / "pred" / "nan.tif", with_nan)
    bad["nan"] = "nan.tif: 1 non-finite"
    write(tmp_path / "trimap" / "labels.png", (case(6)[2] // 127).astype(np.uint8))
    bad["labels"] = "labels.png: trimap is uint8 with values only in 0-2"

    code = run(tmp_path, "--output", str(tmp_path / "out"))
    out, err = capsys.readouterr()
    assert code == 1
    assert "2 of 7 images evaluated" in out
    for stem, reason in bad.items():
        line = next(line for line in err.splitlines() if line.startswith(f"  {stem}:"))
        assert reason in line, line
    with open(tmp_path / "out" / "matting_per_image.csv") as f:
        rows = {r["image_id"]: r for r in csv.DictReader(f)}
    assert sorted(rows) == ["good", "good_tif"]
    for stem, row in rows.items():
        assert float(row["SAD"]) == pytest.approx(expected[stem]["SAD"], rel=1e-12)
    with open(tmp_path / "out" / "matting_metrics.json") as f:
        assert sorted(json.load(f)["skipped"]) == sorted(bad)
    assert leftovers(tmp_path / "out") == []


def test_bad_output_and_options_exit_two_before_reading(tmp_path, capsys):
    pred, alpha, trimap = case(0)
    for d, img in (("pred", pred), ("alpha", alpha), ("trimap", trimap)):
        write(tmp_path / d / "x.png", img)
    (tmp_path / "pred" / "x.png").write_bytes(b"unreadable: would be reported, not reached")
    (tmp_path / "taken").write_text("a file")
    assert run(tmp_path, "--output", str(tmp_path / "taken")) == 2
    err = capsys.readouterr().err
    assert err == f"error: --output {tmp_path / 'taken'}: {tmp_path / 'taken'} exists and is " \
                  "not a directory\n"
    (tmp_path / "folder.csv").mkdir()
    assert run(tmp_path, "--output", str(tmp_path / "folder.csv")) == 2
    assert "is a directory, not a .csv file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        run(tmp_path, "--max-pixels", "0")
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --max-pixels: max_pixels must be >= 1" in err


def test_every_prediction_without_ground_truth_is_named(tmp_path, capsys):
    pred, alpha, trimap = case(0)
    for d, img in (("pred", pred), ("alpha", alpha), ("trimap", trimap)):
        write(tmp_path / d / "x.png", img)
    extra = [f"extra_{i:02d}.png" for i in range(12)]
    for name in extra:
        write(tmp_path / "pred" / name, pred)
    assert run(tmp_path) == 0
    assert f"note: 12 predictions have no ground truth: {', '.join(extra)}\n" in \
        capsys.readouterr().out


def _three_folders(root: Path, stem: str, seed: int = 0) -> None:
    for d, img in zip(("pred", "alpha", "trimap"), case(seed)):
        (root / d).mkdir(exist_ok=True)
        (root / d / f"{stem}.png").write_bytes(cv2.imencode(".png", img)[1].tobytes())


def test_non_utf8_names_are_written_and_printed_escaped(tmp_path, monkeypatch):
    """Under a strict UTF-8 output, names that are not UTF-8 lose nothing."""
    _three_folders(tmp_path, "a")
    _three_folders(tmp_path, os.fsdecode(b"caf\xe9"), seed=1)
    (tmp_path / "alpha" / os.fsdecode(b"n\xffo.png")).write_bytes(
        cv2.imencode(".png", case(2)[1])[1].tobytes())  # no prediction: listed as skipped
    streams = {name: io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
               for name in ("stdout", "stderr")}
    for name, stream in streams.items():
        monkeypatch.setattr(sys, name, stream)
    code = run(tmp_path, "--output", str(tmp_path / "out"))
    for stream in streams.values():
        stream.flush()
    monkeypatch.undo()
    out, err = (streams[name].buffer.getvalue().decode() for name in ("stdout", "stderr"))
    assert code == 1, err
    assert "2 of 3 images evaluated" in out
    assert "n\\xffo: no prediction named n\\xffo.* or n\\xffo_alpha.*" in err
    with open(tmp_path / "out" / "matting_per_image.csv", encoding="utf-8") as f:
        assert sorted(r["image_id"] for r in csv.DictReader(f)) == ["a", "caf\\xe9"]
    with open(tmp_path / "out" / "matting_metrics.json", encoding="utf-8") as f:
        assert "n\\xffo" in json.load(f)["skipped"]


@pytest.mark.integration
def test_unwritable_output_is_found_before_any_image_is_read(tmp_path):
    _three_folders(tmp_path, "x")
    (tmp_path / "pred" / "x.png").write_bytes(b"unreadable: would be reported, not reached")
    locked = tmp_path / "locked"
    with read_only_folder(locked) as prefix:
        proc = subprocess.run(
            [*prefix, sys.executable, str(REPO / "tools" / "evaluate_folder.py"), "--pred",
             str(tmp_path / "pred"), "--alpha", str(tmp_path / "alpha"), "--trimap",
             str(tmp_path / "trimap"), "--output", str(locked)],
            capture_output=True, text=True, check=False,
        )
    assert proc.returncode == 2
    assert proc.stderr == f"error: --output {locked}: cannot write there (Permission denied)\n"


def test_full_disk_message_is_the_one_the_docs_quote(tmp_path, capsys):
    _three_folders(tmp_path, "x")
    with file_size_limit(64):
        assert run(tmp_path, "--output", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    csv_path = tmp_path / "out" / "matting_per_image.csv"
    assert f"\nerror: cannot write {csv_path}: File too large\n" in err and "Errno" not in err
    assert leftovers(tmp_path / "out") == []
    safety = (REPO / "docs" / "safety.md").read_text()
    assert "`error: cannot write out/matting_per_image.csv: No space left on device`" in safety


def test_int32_trimap_is_refused_naming_the_file(tmp_path, capsys):
    pred, alpha, trimap = case(0)
    write(tmp_path / "pred" / "x.png", pred)
    write(tmp_path / "alpha" / "x.png", alpha)
    (tmp_path / "trimap").mkdir()
    Image.fromarray(trimap.astype(np.int32)).save(tmp_path / "trimap" / "x.tif")
    assert run(tmp_path) == 1
    assert f"x: {tmp_path / 'trimap' / 'x.tif'}: int32 samples" in capsys.readouterr().err
