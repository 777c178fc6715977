"""The web app's request handlers, called directly (no browser, no server)."""


import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio", reason="the web app needs the `app` extra (pip install .[app])")

# ruff: noqa: E402 (the app modules import gradio)
from mematte_d2.app import handler as handler_module
from mematte_d2.app.handler import RUN_OUTPUTS, MattingApp, parse_colour
from mematte_d2.config import load_config
from mematte_d2.inference.predictor import MattingPredictor
from mematte_d2.utils.image_io import read_image, read_plane, write_png
from mematte_d2.utils.trimap_from_mask import trimap_from_mask

RUN_DEFAULTS = {"band_percent": 1.0, "budget": "keep ratio", "memory": "auto",
                "keep_ratio": 0.5, "precision": "fp32", "bits": 8,
                "background": "checkerboard", "colour": "#00ff00", "background_path": None}


@pytest.fixture(scope="module")
def predictor(tiny_model_args):
    config, weights, opts = tiny_model_args
    return MattingPredictor(load_config(config, opts), weights, device="cpu")


@pytest.fixture
def app(predictor, tmp_path, monkeypatch):
    # Foreground colours are render.estimate_foreground's job (tested there); its numba
    # compilation would dominate these tests, so the image itself stands in.
    monkeypatch.setattr(handler_module, "estimate_foreground", lambda image01, alpha: image01)
    return MattingApp(predictor, tmp_path / "work", max_pixels=10**6)


@pytest.fixture
def photo_file(tmp_path, photo_rgb):
    path = tmp_path / "cat photo.png"
    write_png(path, photo_rgb[:96, :128])
    return str(path)


def _trimap(h=96, w=128) -> np.ndarray:
    trimap = np.zeros((h, w), np.uint8)
    trimap[16:80, 24:104] = 128
    trimap[32:64, 48:80] = 255
    return trimap


def _run(app, photo, source="upload", editor=None, trimap_path=None, mask_path=None, **options):
    args = {**RUN_DEFAULTS, **options}
    return app.run(photo, source, editor, trimap_path, mask_path, args["band_percent"],
                   args["budget"], args["memory"], args["keep_ratio"], args["precision"],
                   args["bits"], args["background"], args["colour"], args["background_path"])


def test_upload_reads_the_photo_and_shows_a_preview(app, photo_file, photo_rgb):
    photo, editor, info = app.on_upload(photo_file)
    np.testing.assert_array_equal(photo.rgb, photo_rgb[:96, :128])
    assert photo.stem == "cat_photo"
    np.testing.assert_array_equal(editor["background"], photo.rgb)
    assert editor["layers"] == [] and info == "128 x 96 pixels"


def test_upload_applies_exif_orientation(app, tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated 90 degrees clockwise
    Image.new("RGB", (40, 20), (200, 10, 10)).save(path, exif=exif)
    photo, _, info = app.on_upload(str(path))
    assert photo.size == (40, 20) and info == "20 x 40 pixels"


def test_non_image_upload_is_a_page_message_without_server_paths(app, tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    with pytest.raises(gr.Error, match="image: notes.png: not a readable image") as info:
        app.on_upload(str(path))
    assert str(tmp_path) not in info.value.message


def test_upload_over_the_pixel_limit_is_refused(predictor, tmp_path):
    path = tmp_path / "big.png"
    write_png(path, np.zeros((40, 50, 3), np.uint8))
    small = MattingApp(predictor, tmp_path / "work", max_pixels=1999)
    with pytest.raises(gr.Error, match="2,000 pixels, more than the limit of max_pixels=1,999"):
        small.on_upload(str(path))


def test_trimap_of_another_size_is_refused(app, photo_file, tmp_path):
    photo, _, _ = app.on_upload(photo_file)
    path = tmp_path / "trimap.png"
    write_png(path, _trimap(90, 128))
    with pytest.raises(gr.Error, match="trimap is 128x90 pixels but the image is 128x96"):
        app.build_trimap(photo, "upload", None, str(path), None, 1.0)


def test_trimap_without_unknown_region_is_refused(app, photo_file, tmp_path):
    photo, _, _ = app.on_upload(photo_file)
    path = tmp_path / "trimap.png"
    write_png(path, np.where(_trimap() == 255, 255, 0).astype(np.uint8))
    with pytest.raises(gr.Error, match="no unknown"):
        app.build_trimap(photo, "upload", None, str(path), None, 1.0)


def test_uploaded_anti_aliased_trimap_is_snapped(app, photo_file, tmp_path):
    photo, _, _ = app.on_upload(photo_file)
    soft = _trimap()
    soft[16, 24:104] = 100  # an anti-aliased edge: unknown
    soft[32, 48:80] = 200  # foreground
    path = tmp_path / "soft.png"
    write_png(path, soft)
    np.testing.assert_array_equal(
        app.build_trimap(photo, "upload", None, str(path), None, 1.0), _trimap()
    )


def test_painted_trimap_is_at_full_size(app, photo_file):
    photo, _, _ = app.on_upload(photo_file)
    layer = np.zeros((96, 128, 4), np.uint8)
    layer[..., 3][_trimap() > 0] = 255
    layer[..., :3][_trimap() > 0] = _trimap()[_trimap() > 0, None]
    editor = {"background": photo.rgb, "layers": [layer], "composite": None}
    trimap = app.build_trimap(photo, "paint", editor, None, None, 1)
    np.testing.assert_array_equal(trimap, _trimap())
    with pytest.raises(gr.Error, match="nothing is painted"):
        app.build_trimap(photo, "paint", {"layers": []}, None, None, 1)


def test_mask_source_widens_the_mask_with_the_band_slider(app, photo_file, tmp_path):
    photo, _, _ = app.on_upload(photo_file)
    mask = np.zeros((96, 128), np.uint8)
    mask[20:76, 30:100] = 255
    path = tmp_path / "mask.png"
    write_png(path, mask)
    trimap = app.build_trimap(photo, "mask", None, None, str(path), 5.0)
    np.testing.assert_array_equal(trimap, trimap_from_mask(mask, band_fraction=0.05))


def test_run_equals_the_predictor_and_leaves_it_unchanged(app, predictor, photo_file, tmp_path):
    trimap_path = tmp_path / "trimap.png"
    write_png(trimap_path, _trimap())
    photo, _, _ = app.on_upload(photo_file)
    engine, dtype = predictor.engine, predictor.autocast_dtype
    settings = (engine.max_memory, engine.tile_size, predictor.model.backbone.max_tokens)
    out = _run(app, photo, trimap_path=str(trimap_path), keep_ratio=0.5)
    assert len(out) == RUN_OUTPUTS
    alpha_path, cutout_path, trimap_out = out[4:7]
    expected = predictor.predict(read_image(photo_file), _trimap(), keep_ratio=0.5).alpha
    np.testing.assert_array_equal(read_plane(alpha_path),
                                  np.round(np.clip(expected, 0, 1) * 255).astype(np.uint8))
    np.testing.assert_array_equal(read_plane(trimap_out), _trimap())
    assert read_image(cutout_path).shape == (96, 128, 3)
    assert out[0].shape == (96, 128) and out[2].shape == (96, 128, 3)
    assert "tokens routed" in out[-1]
    assert predictor.engine is engine and predictor.autocast_dtype is dtype
    assert (engine.max_memory, engine.tile_size, predictor.model.backbone.max_tokens) == settings
    sixteen = _run(app, photo, trimap_path=str(trimap_path), bits=16)
    assert read_plane(sixteen[4]).dtype == np.uint16


def test_bad_options_are_page_messages(app, photo_file, tmp_path):
    trimap_path = tmp_path / "trimap.png"
    write_png(trimap_path, _trimap())
    photo, _, _ = app.on_upload(photo_file)
    with pytest.raises(gr.Error, match="cannot read memory size"):
        _run(app, photo, trimap_path=str(trimap_path), budget="memory budget", memory="lots")
    with pytest.raises(gr.Error, match="bfloat16"):
        _run(app, photo, trimap_path=str(trimap_path), precision="fp16")
    with pytest.raises(gr.Error, match="upload an image first"):
        _run(app, None, trimap_path=str(trimap_path))


def test_memory_budget_and_keep_ratio_are_call_arguments(app, predictor):
    copied, kwargs = app.request_call("fp32", "memory budget", "2GB", 0.5)
    assert kwargs == {"max_memory": 2 * 2**30}
    assert copied.engine is predictor.engine  # the model and its engine are shared as they are
    copied, kwargs = app.request_call("fp32", "keep ratio", "2GB", 0.5)
    assert kwargs == {"keep_ratio": 0.5}
    with pytest.raises(gr.Error, match="keep_ratio"):
        app.request_call("fp32", "keep ratio", "auto", 0)


def test_progress_follows_the_encoder_and_every_decoder_window(app, predictor):
    seen = []
    app.predict(predictor, np.zeros((32, 32, 3), np.uint8), _trimap(32, 32), {"keep_ratio": 0.5},
                lambda done, total, stage: seen.append((done, total, stage)))
    blocks = len(predictor.model.backbone.blocks)
    assert seen[: blocks + 1] == [(i, blocks, "encoder") for i in range(blocks + 1)]
    assert seen[blocks + 1:] and all(stage == "decoder" for _, _, stage in seen[blocks + 1:])
    assert seen[-1][0] == seen[-1][1]  # the last window


def test_stop_ends_the_run_at_the_next_progress_step(app, predictor, photo_file, tmp_path,
                                                     monkeypatch):
    trimap_path = tmp_path / "trimap.png"
    write_png(trimap_path, _trimap())
    photo, _, _ = app.on_upload(photo_file)
    steps = []

    def stop_during_predict(predictor_copy, rgb, trimap, kwargs, progress):
        app.stop()

        def counted(*args):
            steps.append(args)
            progress(*args)

        return MattingApp.predict(app, predictor_copy, rgb, trimap, kwargs, counted)

    monkeypatch.setattr(app, "predict", stop_during_predict)
    out = _run(app, photo, trimap_path=str(trimap_path))
    assert steps == [(0, len(predictor.model.backbone.blocks), "encoder")]  # the first step
    assert len(out) == RUN_OUTPUTS
    assert not list((tmp_path / "work").rglob("*.png"))


def test_parse_colour():
    np.testing.assert_allclose(parse_colour("#ff8000"), [1, 128 / 255, 0])
    np.testing.assert_allclose(parse_colour("#fff"), [1, 1, 1])
    np.testing.assert_allclose(parse_colour("rgba(0, 255, 0, 1)"), [0, 1, 0])
    with pytest.raises(gr.Error, match="cannot read the colour"):
        parse_colour("green")
