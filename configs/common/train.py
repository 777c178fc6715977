"""Run-level settings shared by every recipe (detectron2 LazyConfig conventions).

AMP and DDP as in the authors' release: fp16 autocast with a GradScaler (on a CPU, where
autocast has no fp16, training runs in fp32 and says so), rank 0's buffers synced at each
forward, gradients all-reduced in fp16 (``ddp.grad_compression`` follows ``amp``: bf16 with
bf16 AMP, fp32 without AMP).
"""

train = dict(
    output_dir="./output",
    init_checkpoint="",  # ViTMatte / MEMatte weights to start from ("" = from scratch)
    max_iter=40406,
    eval_period=5000,  # evaluation on the test sets; 0 = only at the end
    validation_set=None,  # a held-out registered set: keeps model_best.pth by its SAD
    log_period=20,
    vis_period=1000,  # TensorBoard sheet of predictions and routing maps (0 = off)
    vis_images=2,
    checkpointer=dict(period=5000, max_to_keep=5),
    amp=dict(enabled=True, precision="float16"),  # or "bfloat16"
    clip_grad=dict(enabled=False, max_norm=1.0),
    # forward_sync_buffers: torch's replacement of the deprecated broadcast_buffers;
    # grad_compression: all-reduce gradients in the AMP dtype (fp16 only with the GradScaler)
    ddp=dict(forward_sync_buffers=True, find_unused_parameters=False, grad_compression=True),
    device=None,  # None = CUDA when available, else CPU; with several GPUs, one per process
    seed=42,  # < 0 = a fresh random seed per run (resumed runs then differ)
    # processes the batch and lr were chosen for: another world size scales batch, lr and
    # iteration counts to keep the batch per process (MattingTrainer.auto_scale_workers); 0 = off
    reference_world_size=0,
    cudnn_benchmark=False,
    # deterministic CUDA kernels (slower): a resumed CUDA run then equals an uninterrupted one;
    # CPU runs are deterministic without it (docs/determinism.md)
    deterministic=False,
)
