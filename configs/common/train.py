"""Run-level settings shared by every recipe (detectron2 LazyConfig conventions)."""

train = dict(
    output_dir="./output",
    init_checkpoint="",  # ViTMatte / MEMatte weights to start from ("" = from scratch)
    max_iter=40406,
    eval_period=5000,  # 0 = evaluate only at the end
    log_period=20,
    vis_period=1000,  # TensorBoard sheet of predictions and routing maps (0 = off)
    vis_images=2,
    checkpointer=dict(period=5000, max_to_keep=5),
    amp=dict(enabled=False, precision="float16"),  # CUDA: float16 / bfloat16; CPU: bfloat16
    clip_grad=dict(enabled=False, max_norm=1.0),
    ddp=dict(broadcast_buffers=False, find_unused_parameters=False, fp16_compression=False),
    device=None,  # None = CUDA when available, else CPU
    seed=42,  # < 0 = a fresh random seed per run (resumed runs then differ)
    cudnn_benchmark=False,
)
