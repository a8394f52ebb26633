"""The ``f8lab`` command: train and evaluate (``python -m f8lab`` works too).

    f8lab train CONFIG [--profile quick|default|imagenet] [--set key=value ...] [--out DIR]
                       [--init CHECKPOINT] [--resume | --overwrite]
    f8lab eval CHECKPOINT|FILE.onnx [--mode float|fake|integer|onnx] [--profile ... --config ...]
               [--set data.key=value ...]
               (a torch.ao affine checkpoint: --mode fake, or integer for its int8 model)
    f8lab eval F8NET_FILE --f8net ROW --config CONFIG [--profile ...] [--mode float|fake|integer|onnx]
               [--set data.key=value ...]   (a file of F8Net's model zoo, in F8Net's layout:
               float rows --mode float, 8-bit rows fake, integer or onnx)
    f8lab export F8NET_FILE --f8net ROW --config CONFIG --format onnx-int8|onnx-integer-float
                 --out FILE [--weights ...] [--set data.key=value ...]   (8-bit rows)
    f8lab export CHECKPOINT --format onnx-int8|onnx-integer-float|onnx-float --out FILE
                 [--weights portable|s8|u8] [--set data.key=value ...]

Exit codes: 0 done; 2 bad input (a usage, config, data, checkpoint or output-folder
error: ``error: ...`` names the file or key and the fix); 1 a run stopped because its
loss or formats went non-finite; 130 interrupted (``--resume`` continues the run).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from f8lab.baselines import AffineQAT, convert_to_int8
from f8lab.data import DataError
from f8lab.export import FORMATS, WEIGHT_FORMS, OnnxModel, export_onnx, integerize
from f8lab.models.f8net_layout import ZOO
from f8lab.models.f8net_zoo import load_f8net_zoo
from f8lab.train import ConfigError, evaluate, load_config, read_checkpoint, train
from f8lab.train.checkpoint import CheckpointError, model_from_state, read_f8net_file
from f8lab.train.config import PROFILES, RESUMABLE, RunConfig, config_from_dict, with_data_overrides
from f8lab.train.data import make_batches, sample_test_images
from f8lab.train.run_folder import RunFolderError

BAD_INPUT = (ConfigError, DataError, CheckpointError, RunFolderError, OSError, ValueError, TypeError)

EVAL_MODES = ("float", "fake", "integer", "onnx")


def _train(args: argparse.Namespace) -> None:
    config = load_config(args.config, args.profile, args.set)
    out = args.out or Path("results") / args.profile / Path(args.config).stem
    result = train(config, out, resume=args.resume, init=args.init, overwrite=args.overwrite)
    print(json.dumps({"out": str(out), **result.metrics}))


def _eval_config(args: argparse.Namespace, saved: dict):
    if args.profile is None:
        return with_data_overrides(config_from_dict(saved), args.set)
    if args.config is None:
        raise ValueError("--profile needs --config, the YAML file whose profile to use")
    return with_data_overrides(load_config(args.config, args.profile), args.set)


def _refuse_affine(state: dict, what: str) -> None:
    if state.get("affine") is not None:
        raise ValueError(
            f"this is a torch.ao affine QAT checkpoint; {what} covers f8lab's "
            "float and fixed-point models: evaluate it with --mode fake or "
            "--mode integer (torch.ao's int8 model)"
        )


def _eval_onnx(args: argparse.Namespace) -> dict:
    if args.checkpoint.suffix == ".onnx":
        model = OnnxModel(args.checkpoint)
        if "config" not in model.metadata:
            raise ValueError(f"{args.checkpoint} records no run config: export it with `f8lab export`")
        config = _eval_config(args, json.loads(model.metadata["config"]))
        return evaluate(model, make_batches(config, False))
    state = read_checkpoint(args.checkpoint)
    _refuse_affine(state, "the ONNX export")
    fmt = "onnx-int8" if state["quant"] is not None else "onnx-float"
    with tempfile.TemporaryDirectory() as folder:
        path = export_onnx(model_from_state(state), Path(folder) / "model.onnx", fmt)
        return evaluate(OnnxModel(path), make_batches(_eval_config(args, state["config"]), False))


def _f8net_model(args: argparse.Namespace) -> tuple[nn.Module, RunConfig]:
    """A file of F8Net's model zoo in F8Net's layout, and the run config of ``--config``
    whose data it reads."""
    if args.config is None:
        raise ValueError(
            "--f8net needs --config, the YAML file whose data settings to use, e.g. "
            "configs/imagenet/resnet18_f8.yaml (with --set data.root=IMAGENET)"
        )
    config = with_data_overrides(load_config(args.config, args.profile or "default"), args.set)
    normalized = ZOO[args.f8net].normalized_input
    if config.data.normalize != normalized:
        raise ValueError(
            f"F8Net's {args.f8net} reads {'normalised images' if normalized else 'pixels'}: "
            f"use data.normalize: {str(normalized).lower()} "
            f"(--set data.normalize={str(normalized).lower()}, or a config that has it)"
        )
    model = load_f8net_zoo(read_f8net_file(args.checkpoint), args.f8net, config.model.num_classes)
    return model, config


def _f8net_rows(kind: str) -> str:
    """The model-zoo rows of F8Net's files of one kind ("float" or "8-bit")."""
    return ", ".join(row for row, recipe in ZOO.items() if recipe.kind == kind)


def _export_f8net(model: nn.Module, config: RunConfig, out: Path, fmt: str, weights: str) -> Path:
    """The ONNX file of F8Net's layout (its integer network: folded in float64)."""
    if fmt == "onnx-float":
        raise ValueError(
            "F8Net's 8-bit files export as onnx-int8 or onnx-integer-float "
            "(f8lab writes no onnx-float file of F8Net's layout)"
        )
    example = sample_test_images(config, 1)[0].double()
    metadata = {"config": json.dumps(config.to_dict())}
    return export_onnx(model.double(), out, fmt, example, metadata=metadata, weights=weights)


def _eval_f8net(args: argparse.Namespace) -> dict:
    """A file of F8Net's model zoo, in F8Net's layout, on the data of ``--config``."""
    floating = ZOO[args.f8net].floating
    mode = args.mode or ("float" if floating else "fake")
    if (mode == "float") != floating:
        modes = "float" if floating else "fake, integer or onnx"
        raise ValueError(
            f"--mode {mode}: F8Net's {args.f8net} is one of its {ZOO[args.f8net].kind} files: it evaluates "
            f"with --mode {modes} (float rows: {_f8net_rows('float')}; 8-bit rows: {_f8net_rows('8-bit')})"
        )
    model, config = _f8net_model(args)
    if mode == "integer":  # the integer-only network (integers carried in float64)
        example = sample_test_images(config, 1)[0].double()
        model = integerize(model.double(), example_input=example, carrier=torch.float64)
    batches = make_batches(config, False)
    if mode != "onnx":
        metrics = evaluate(model, batches)
    else:
        with tempfile.TemporaryDirectory() as folder:
            path = _export_f8net(model, config, Path(folder) / "model.onnx", "onnx-int8", "portable")
            metrics = evaluate(OnnxModel(path), batches)
    return {"mode": mode, "checkpoint": str(args.checkpoint), "f8net": args.f8net, **metrics}


def _eval(args: argparse.Namespace) -> None:
    if args.f8net is not None:
        print(json.dumps(_eval_f8net(args)))
        return
    if args.checkpoint.suffix == ".onnx" or args.mode == "onnx":
        metrics = _eval_onnx(args)
        print(json.dumps({"mode": "onnx", "checkpoint": str(args.checkpoint), **metrics}))
        return
    state = read_checkpoint(args.checkpoint)
    fixed = state["quant"] is not None or state.get("affine") is not None
    mode = args.mode or ("fake" if fixed else "float")
    if (mode != "float") != fixed:
        kind = ("torch.ao affine" if state.get("affine") is not None else "fixed-point") if fixed else "float"
        raise ValueError(
            f"{args.checkpoint} is a {kind} checkpoint; --mode {mode} "
            f"needs a {'float' if fixed else 'fixed-point'} one"
        )
    config = _eval_config(args, state["config"])
    model = model_from_state(state)
    if mode == "integer" and isinstance(model, AffineQAT):  # torch.ao's int8 model
        model = convert_to_int8(model)
    elif mode == "integer":  # the integer-only network (integers carried in float64)
        model = integerize(model.double(), carrier=torch.float64)
    metrics = evaluate(model, make_batches(config, False))
    print(json.dumps({"mode": mode, "checkpoint": str(args.checkpoint), **metrics}))


def _export(args: argparse.Namespace) -> None:
    if args.out.is_dir():
        raise ValueError(
            f"--out {args.out} is a folder; name the file to write, e.g. {args.out / 'model.onnx'}"
        )
    if args.f8net is not None:
        if ZOO[args.f8net].floating:
            raise ValueError(
                f"F8Net's {args.f8net} is a float file: it evaluates (f8lab eval --mode float) but "
                f"f8lab exports F8Net's 8-bit files only ({_f8net_rows('8-bit')})"
            )
        model, f8net_config = _f8net_model(args)
        path = _export_f8net(model, f8net_config, args.out, args.format, args.weights)
        print(json.dumps({"format": args.format, "f8net": args.f8net, "out": str(path)}))
        return
    state = read_checkpoint(args.checkpoint)
    _refuse_affine(state, "`f8lab export`")
    config = with_data_overrides(config_from_dict(state["config"]), args.set)
    path = export_onnx(
        model_from_state(state),
        args.out,
        args.format,
        metadata={"config": json.dumps(config.to_dict())},
        weights=args.weights,
    )
    weights = {"weights": args.weights} if args.format == "onnx-int8" else {}
    print(json.dumps({"format": args.format, **weights, "out": str(path)}))


def _f8net_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--f8net",
        choices=sorted(ZOO),
        metavar="ROW",
        help=f"the checkpoint is a file of F8Net's model zoo, of this row ({', '.join(ZOO)}): {what}",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="f8lab",
        description="F8Net fixed-point study kit.",
        epilog="exit codes: 0 done, 2 bad input (the message names the file or key and the "
        "fix), 1 a run stopped on a non-finite loss or format, 130 interrupted",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser(
        "train",
        help="train a float or fixed-point model from a config",
        description="Train from a YAML config; writes OUT/last.pt, OUT/best.pt and OUT/metrics.csv.",
    )
    p.add_argument("config", help="YAML config, e.g. configs/fashion_mnist/resnet18_fp.yaml")
    p.add_argument(
        "--profile", choices=PROFILES, default="default", help="size profile (default: %(default)s)"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a value, e.g. --set optim.epochs=3 (repeatable)",
    )
    p.add_argument("--out", type=Path, help="output folder (default: results/PROFILE/CONFIG)")
    p.add_argument(
        "--init",
        help="float checkpoint (or torchvision:NAME, or ptcv:NAME for PytorchCV's pretrained "
        "resnet18, resnet50b, mobilenet_w1, mobilenetv2b_w1) to start from; overrides run.init",
    )
    again = p.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in OUT from OUT/last.pt, with the run's config: "
        "only "
        + ", ".join(f"{s}.{k}" for s, k in sorted(RESUMABLE))
        + " may change (epochs and max_iters only upward)",
    )
    again.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the run OUT holds and train afresh (without --resume or "
        "--overwrite, a folder that holds a run is refused)",
    )
    p.set_defaults(run=_train)
    p = commands.add_parser(
        "eval",
        help="evaluate a checkpoint or an exported ONNX file; prints JSON as its last line",
        description="Evaluate on the run's test set.",
    )
    p.add_argument("checkpoint", type=Path, help="a checkpoint, or a file from `f8lab export`")
    p.add_argument(
        "--mode",
        choices=EVAL_MODES,
        help="float, fake (fake-quant simulation), integer (the integer-only model) "
        "or onnx (onnxruntime; an .onnx file always is); default: from the checkpoint",
    )
    p.add_argument("--profile", choices=PROFILES, help="evaluate with this profile of --config")
    p.add_argument("--config", help="the YAML config whose profile to use")
    _f8net_options(p, "evaluate it in F8Net's own layout on the data of --config (float rows: --mode float)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="data.KEY=VALUE",
        help="where the test data is on this machine, e.g. --set data.root=/data/imagenet "
        "(data.* keys only; repeatable)",
    )
    p.set_defaults(run=_eval)
    p = commands.add_parser(
        "export", help="export a checkpoint to ONNX", description="Write an ONNX file that onnxruntime runs."
    )
    p.add_argument("checkpoint", type=Path)
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="onnx-int8",
        help="onnx-int8 (int8 kernels), onnx-integer-float (integer values in "
        "float32) or onnx-float (the float network); default: %(default)s",
    )
    p.add_argument(
        "--weights",
        choices=WEIGHT_FORMS,
        default="portable",
        help="onnx-int8's kernel weights: portable (exact on every CPU), s8 (int8 "
        "everywhere: faster, exact on x86-64 with VNNI and on ARM64) or u8; "
        "default: %(default)s",
    )
    p.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    _f8net_options(p, "export it in F8Net's own layout, reading the data of --config (8-bit rows)")
    p.add_argument("--config", help="with --f8net: the YAML config whose data the file records")
    p.add_argument("--profile", choices=PROFILES, help="with --f8net: the profile of --config")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="data.KEY=VALUE",
        help="data settings the file records for `f8lab eval` (data.* keys only; repeatable)",
    )
    p.set_defaults(run=_export)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except BAD_INPUT as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except FloatingPointError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        resume = " (continue a run with --resume)" if args.command == "train" else ""
        print(f"interrupted{resume}", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
