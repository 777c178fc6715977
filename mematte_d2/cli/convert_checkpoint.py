"""Convert released matting weights to this project's layout, or check weights against a config.

    # Hugging Face transformers VitMatteForImageMatting (file or model directory) -> ViTMatte here
    python tools/convert_checkpoint.py hf hf_vitmatte_small/ vitmatte_s.pth
    # official ViTMatte checkpoint -> MEMatte initialisation (student + teacher_ copy); with a
    # config the router / LTRM weights missing from ViTMatte are filled with the model's init
    python tools/convert_checkpoint.py vitmatte2mematte ViTMatte_S_Com.pth mematte_s_init.pth \\
        --config-file configs/Composition-1K/mematte_s_topk0.25.py
    # does a checkpoint fit a config? lists missing, unexpected and reshaped keys
    python tools/convert_checkpoint.py check mematte_s.pth --config-file configs/...py

Exit code 0 on success (check: the checkpoint fits), 1 when the check finds differences,
2 for unreadable or unsafe inputs, an output that cannot be written, or a conversion that does
not apply. The output is written to a temporary file and renamed: never left half-written.
"""

import argparse
import sys
from pathlib import Path

import torch

from mematte_d2.checkpoint import (
    CheckpointError,
    ConversionError,
    compare_state_dicts,
    describe_layout,
    fill_missing_from,
    hf_vitmatte_to_d2,
    load_state_dict,
    vitmatte_to_mematte,
)
from mematte_d2.config import ConfigError, load_config
from mematte_d2.utils.atomic import atomic_write


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mematte-convert-checkpoint", description=__doc__.split("\n")[0]
    )
    sub = p.add_subparsers(dest="command", required=True)

    def add_config(sp, required: bool) -> None:
        sp.add_argument(
            "--config-file",
            required=required,
            help="LazyConfig with a `model` node; trailing key=value words override it",
        )

    hf = sub.add_parser("hf", help="transformers VitMatteForImageMatting -> this layout")
    hf.add_argument("input", help="state dict file (.safetensors/.bin/.pth) or model directory")
    hf.add_argument("output", help="converted checkpoint (.pth)")
    hf.add_argument("--to-mematte", action="store_true", help="continue to a MEMatte init")
    add_config(hf, required=False)

    vm = sub.add_parser("vitmatte2mematte", help="ViTMatte checkpoint -> MEMatte initialisation")
    vm.add_argument("input")
    vm.add_argument("output")
    vm.add_argument(
        "--global-blocks",
        help="comma-separated global-attention block indices (default: blocks with a residual)",
    )
    vm.add_argument("--seed", type=int, default=0, help="seed of the filled-in initialisation")
    add_config(vm, required=False)

    ck = sub.add_parser("check", help="list differences between a checkpoint and a config")
    ck.add_argument("checkpoint")
    add_config(ck, required=True)
    return p


def _build_model_state(args) -> dict[str, torch.Tensor]:
    from detectron2.config import instantiate

    torch.manual_seed(getattr(args, "seed", 0))
    return instantiate(args.cfg.model).state_dict()


def _convert(args) -> int:
    if Path(args.output).resolve() == Path(args.input).resolve():
        raise ConversionError(f"output {args.output} is the input file; choose another path")
    if Path(args.output).is_dir():
        raise ConversionError(f"output {args.output} is a folder; give a file name (.pth)")
    state = load_state_dict(args.input)
    dropped: list[str] = []
    if args.command == "hf":
        state = hf_vitmatte_to_d2(state)
        print(f"renamed {len(state)} Hugging Face keys to the ViTMatte layout")
    if args.command == "vitmatte2mematte" or args.to_mematte:
        blocks = getattr(args, "global_blocks", None)
        indices = [int(b) for b in blocks.split(",")] if blocks else None
        state, dropped = vitmatte_to_mematte(state, indices)
        print(f"MEMatte initialisation: {len(state)} keys; student without {len(dropped)} "
              "global-block relative-position tables; teacher_backbone.* = full ViTMatte encoder")
    status = 0
    if args.cfg is not None:
        model_state = _build_model_state(args)
        added = fill_missing_from(state, model_state)
        if added:
            print(f"{len(added)} keys not in the source keep the model's initialisation, e.g. "
                  + ", ".join(added[:4]))
        report = compare_state_dicts(state, model_state)
        print(report.format(limit=None))
        status = 0 if report.ok else 1
    elif dropped:
        print("routers (backbone.routers.*) and LTRMs (backbone.blocks.*.efficient_block.*) are "
              "absent: load with the model's init for them, or pass --config-file to fill them")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    data = {"model": state, "__converted_by__": "mematte_d2 convert_checkpoint"}
    atomic_write(args.output, lambda f: torch.save(data, f))
    print(f"wrote {args.output}")
    return status


def _check(args) -> int:
    state = load_state_dict(args.checkpoint)
    report = compare_state_dicts(state, _build_model_state(args))
    print(f"{args.checkpoint}: {describe_layout(state)}")
    print(report.format(limit=None))
    return 0 if report.ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; words of the form key=value anywhere become config overrides."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    unknown = [word for word in extra if word.startswith("-") or "=" not in word]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if extra and not args.config_file:
        parser.error(f"key=value overrides ({' '.join(extra)}) need --config-file")
    args.opts = extra
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        args.cfg = load_config(args.config_file, args.opts) if args.config_file else None
        return _check(args) if args.command == "check" else _convert(args)
    except (CheckpointError, ConversionError, ConfigError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
