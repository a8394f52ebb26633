"""onnxruntime speed of f8lab's int8 exports beside the FP32 export and beside onnxruntime's
own static quantization of the same float network.

    python benchmarks/bench_onnx.py [--repeats 40] [--threads 2] [--sizes 224 28]

Targets: the 8-bit-add export (residual="int8") >= 2.5x FP32 on ResNet-18 and at least
as fast as the peer on every network and batch; the exact int32-add export
(residual="int32") for the record. Each f8lab export is timed in its three weight forms
(export_onnx's ``weights``): portable (the default, exact on every CPU: int8 weights only
where no pair of products can pass int16, uint8 with zero point 128 elsewhere), s8 (int8
everywhere: exact only where the uint8 x int8 kernels add in 32 bits, VNNI or ARM64) and
u8 (uint8 everywhere). The peer is quantize_static (QDQ, uint8 activations, int8
weights, per tensor) of the onnx-float file, calibrated on 8 images, as is and with
``reduce_range=True`` (7-bit weights, its own remedy for CPUs without VNNI).

ResNet-18 and MobileNet V2 with the ImageNet stem at 224x224 and with the study's small
stem at 28x28 (1 channel), batch 1 and 8, onnxruntime CPU with 2 threads; models
calibrated on random images. The 8-bit-add export is QLinearConv and QLinearAdd only, plus
a Clip after every signed requantization (the format is symmetric, +-127, and uint8 with
zero point 128 reaches -128): the same file with its Clips removed (not exact) is timed
beside it. Sessions take turns in blocks, medians reported. The first line names the CPU
flags that pick onnxruntime's kernels: figures hold for machines with the same ones.
"""

import argparse
import tempfile
from pathlib import Path

import onnx
import onnxruntime as ort
import torch

from f8lab.export import WEIGHT_FORMS, export_onnx
from f8lab.export.onnx.int8 import kernel_weights
from f8lab.export.onnx.run import int8_weights_saturate
from f8lab.export.onnx.speed import cpu_flags, ort_static_quantize, time_onnx
from f8lab.models import build_model, from_float
from f8lab.quant import QuantConfig

STEMS = {224: ("imagenet", 3), 28: ("small", 1)}


def calibrated_model(name: str, quant: QuantConfig, size: int) -> torch.nn.Module:
    stem, channels = STEMS[size]
    torch.manual_seed(0)
    float_model = build_model(name, stem=stem, in_channels=channels).train()
    with torch.no_grad():
        float_model(torch.rand(4, channels, size, size))
    model = from_float(float_model, quant).train()
    with torch.no_grad():
        model(torch.rand(4, channels, size, size))
    return model.eval()


def without_clips(path: Path) -> Path:
    """A copy of an exported file with every Clip bypassed: its speed without the
    symmetric format's saturation (its values are no longer exact)."""
    model = onnx.load(path)
    nodes = model.graph.node
    source = {node.output[0]: node.input[0] for node in nodes if node.op_type == "Clip"}
    kept = [node for node in nodes if node.op_type != "Clip"]
    for node in kept:
        node.input[:] = [source.get(name, name) for name in node.input]
    del nodes[:]
    nodes.extend(kept)
    used = {name for node in kept for name in node.input}
    weights = [tensor for tensor in model.graph.initializer if tensor.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(weights)
    out = path.with_name(path.stem + "_no_clip.onnx")
    onnx.save(model, out)
    return out


def int8_weight_kernels(path: Path) -> str:
    """How many of a file's QLinearConv / MatMulInteger kernels take int8 weights."""
    kinds = [tensor.data_type for _, tensor in kernel_weights(onnx.load(path).graph)]
    return f"{kinds.count(onnx.TensorProto.INT8)} of {len(kinds)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 28], choices=sorted(STEMS))
    args = parser.parse_args()
    print(
        f"CPU {cpu_flags()}; onnxruntime {ort.__version__}, uint8 x int8 kernels "
        f"{'saturate pairs' if int8_weights_saturate() else 'exact'} here; "
        f"{args.threads} threads, median of {args.repeats} runs"
    )
    folder = Path(tempfile.mkdtemp())
    for size in args.sizes:
        channels = STEMS[size][1]
        for name in ("resnet18", "mobilenet_v2"):
            tag = f"{name} {size}x{size}"
            stem = folder / f"{name}_{size}"
            int32_add = calibrated_model(name, QuantConfig(), size)
            eight_bit_add = calibrated_model(name, QuantConfig(residual="int8"), size)
            files = {"fp32": export_onnx(int32_add, f"{stem}_fp32.onnx", "onnx-float")}
            for weights in WEIGHT_FORMS:
                files[f"8-bit add {weights}"] = export_onnx(
                    eight_bit_add, f"{stem}_add8_{weights}.onnx", weights=weights
                )
            files["8-bit add portable without Clips (not exact)"] = without_clips(files["8-bit add portable"])
            for weights in ("portable", "s8"):
                files[f"int32 add {weights}"] = export_onnx(
                    int32_add, f"{stem}_add32_{weights}.onnx", weights=weights
                )
            calibration = (
                torch.randint(
                    0, 256, (8, channels, size, size), generator=torch.Generator().manual_seed(1)
                ).float()
                / 256
            ).numpy()
            for reduce_range in (False, True):
                label = "quantize_static" + (" reduce_range" if reduce_range else "")
                files[label] = ort_static_quantize(
                    files["fp32"], f"{stem}_qdq_{reduce_range}.onnx", calibration, reduce_range
                )
            print(
                f"{tag}: int8-weight kernels in the portable files: 8-bit add "
                f"{int8_weight_kernels(files['8-bit add portable'])}, int32 add "
                f"{int8_weight_kernels(files['int32 add portable'])}"
            )
            for batch in (1, 8):
                x = (torch.randint(0, 256, (batch, channels, size, size)).float() / 256).numpy()
                ms = time_onnx(files, x, args.repeats, args.threads)
                peer = ms["quantize_static"]
                print(f"{tag} batch {batch} (ms; x = quantize_static's time / this one's):")
                for label, t in ms.items():
                    print(
                        f"    {label:46s} {t:8.2f} ms  {peer / t:5.2f}x  (fp32 / this {ms['fp32'] / t:.2f}x)"
                    )


if __name__ == "__main__":
    main()
