"""The page: a gradio Blocks layout wired to MattingApp's handlers.

Left: the photo, the trimap (painted, uploaded or made from a mask) and its preview. Right:
the options, Run / Stop, the results and the full-resolution downloads. Every element a test
or a user's script needs has an ``elem_id``.
"""

from __future__ import annotations

import gradio as gr

from mematte_d2.utils.image_io import IMAGE_EXTENSIONS
from mematte_d2.utils.trimap_from_mask import DEFAULT_BAND_FRACTION

from .handler import BACKGROUNDS, BUDGETS, TRIMAP_SOURCES, MattingApp
from .painting import BRUSH_COLORS

# System fonts only: the page loads nothing from outside the machine.
THEME = gr.themes.Default(
    font=["system-ui", "-apple-system", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
    font_mono=["ui-monospace", "DejaVu Sans Mono", "Menlo", "Consolas", "monospace"],
)
CSS = "#title {margin-bottom: 0} .compact textarea {min-height: 0}"
# gradio's cache of uploads and outputs: files older than an hour go, checked every 10 minutes.
DELETE_CACHE = (600, 3600)

INTRO = """# MEMatte: alpha mattes of big photos
Upload a photo, give a trimap (paint it: **white** foreground, **grey** unknown edges such as
hair, **black** or unpainted background), then **Run**. The alpha and the RGBA cutout download
at full resolution."""


def build_blocks(app: MattingApp, model_name: str = "") -> gr.Blocks:
    """The app's page; ``model_name`` is shown under the title."""
    files = list(IMAGE_EXTENSIONS)
    with gr.Blocks(title="MEMatte", analytics_enabled=False, delete_cache=DELETE_CACHE) as demo:
        photo = gr.State(None)
        result = gr.State(None)
        gr.Markdown(INTRO + (f"\n\nModel: `{model_name}`" if model_name else ""), elem_id="title")
        with gr.Row():
            with gr.Column(scale=1):
                image_file = gr.File(label="Image (JPEG, PNG, TIFF, WebP)", file_types=files,
                                     type="filepath", elem_id="image-file", height=110)
                image_info = gr.Markdown(elem_id="image-info")
                source = gr.Radio(list(TRIMAP_SOURCES), value="paint", label="Trimap from",
                                  info="paint it, upload one, or a coarse mask (painted or "
                                       "uploaded) widened into a trimap",
                                  elem_id="trimap-source")
                editor = gr.ImageEditor(
                    label="Paint: white foreground, grey unknown, black background",
                    sources=(), transforms=(), type="numpy", image_mode="RGBA", format="png",
                    brush=gr.Brush(colors=list(BRUSH_COLORS.values()),
                                   default_color=BRUSH_COLORS["unknown"], color_mode="fixed"),
                    layers=gr.LayerOptions(allow_additional_layers=False, layers=["Trimap"]),
                    buttons=["fullscreen"], elem_id="editor", height=420,
                )
                with gr.Row():
                    trimap_file = gr.File(label="Trimap (for 'upload')", file_types=files,
                                          type="filepath", elem_id="trimap-file", height=110)
                    mask_file = gr.File(label="Mask (for 'mask'; else the painting)",
                                        file_types=files, type="filepath",
                                        elem_id="mask-file", height=110)
                band = gr.Slider(0.2, 10.0, value=100 * DEFAULT_BAND_FRACTION, step=0.1,
                                 label="Mask: unknown band, % of the shorter side each way",
                                 elem_id="band")
                preview_button = gr.Button("Show trimap", elem_id="show-trimap")
                trimap_preview = gr.Image(label="Trimap used", type="numpy", format="png",
                                          interactive=False, elem_id="trimap-preview",
                                          height=260)
            with gr.Column(scale=1):
                with gr.Row():
                    budget = gr.Radio(list(BUDGETS), value="memory budget", label="Budget",
                                      elem_id="budget")
                    precision = gr.Radio(["fp32", "bf16", "fp16"], value="fp32",
                                         label="Precision", elem_id="precision")
                with gr.Row():
                    memory = gr.Textbox("auto", label="Memory budget (e.g. 4GB, auto = 80% "
                                        "of free memory)", elem_id="memory", max_lines=1)
                    keep_ratio = gr.Slider(0.05, 1.0, value=0.25, step=0.01,
                                           label="Keep ratio (share of tokens routed)",
                                           elem_id="keep-ratio")
                with gr.Row():
                    run = gr.Button("Run", variant="primary", elem_id="run")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop")
                summary = gr.Markdown(elem_id="summary")
                with gr.Row():
                    alpha = gr.Image(label="Alpha", type="numpy", format="png",
                                     interactive=False, elem_id="alpha", height=260)
                    routing = gr.Image(label="Routing (red: global attention)",
                                       type="numpy", format="png", interactive=False,
                                       elem_id="routing", height=260)
                cutout = gr.Image(label="Cutout", type="numpy", format="png", interactive=False,
                                  elem_id="composite", height=260)
                with gr.Row():
                    background = gr.Radio(list(BACKGROUNDS), value="checkerboard",
                                          label="Cutout over", elem_id="background")
                    colour = gr.ColorPicker("#3a7d44", label="Colour", elem_id="colour")
                    background_file = gr.File(label="Background image", file_types=files,
                                              type="filepath", elem_id="background-file",
                                              height=110)
                bits = gr.Radio([8, 16], value=8, label="PNG bits of the downloads",
                                elem_id="bits")
                with gr.Row():
                    alpha_file = gr.File(label="Alpha PNG", interactive=False,
                                         elem_id="alpha-file")
                    cutout_file = gr.File(label="RGBA cutout PNG", interactive=False,
                                          elem_id="cutout-file")
                    trimap_out = gr.File(label="Trimap PNG", interactive=False,
                                         elem_id="trimap-out")

        image_file.change(app.on_upload, image_file, [photo, editor, image_info])
        trimap_inputs = [photo, source, editor, trimap_file, mask_file, band]
        preview_button.click(app.show_trimap, trimap_inputs, trimap_preview)

        def run_request(photo, source, editor, trimap_path, mask_path, band_percent, budget,
                        memory, keep_ratio, precision, bits, background, colour,
                        background_path, request: gr.Request,
                        progress=gr.Progress()):  # noqa: B008 (gradio's way to ask for it)
            return app.run(photo, source, editor, trimap_path, mask_path, band_percent,
                           budget, memory, keep_ratio, precision, bits, background, colour,
                           background_path, request=request, progress=progress)

        running = run.click(
            run_request,
            [*trimap_inputs, budget, memory, keep_ratio, precision, bits, background, colour,
             background_file],
            [alpha, cutout, routing, trimap_preview, alpha_file, cutout_file, trimap_out,
             result, summary],
            concurrency_limit=1, concurrency_id="model",
        )
        stop.click(app.stop, None, None, cancels=[running], queue=False)
        for trigger in (background.change, colour.change, background_file.change):
            trigger(app.recompose, [result, background, colour, background_file], cutout)
    return demo


def launch(demo: gr.Blocks, host: str, port: int, **kwargs) -> None:
    """Serve the page on ``host:port`` with nothing fetched from outside the machine."""
    demo.queue(default_concurrency_limit=1).launch(
        server_name=host, server_port=port, theme=THEME, css=CSS, ssr_mode=False,
        footer_links=[], share=False, show_error=False, **kwargs,
    )
