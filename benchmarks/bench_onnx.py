"""onnxruntime speed of f8lab's int8 exports beside the FP32 export and beside onnxruntime's
own static quantization of the same float network (targets: the 8-bit-add export
(residual="int8") >= 2.5x FP32 on ResNet-18 and at least as fast as the peer on every
network and batch; the exact int32-add export (residual="int32") for the record).

    python benchmarks/bench_onnx.py [--repeats 30] [--threads 2]

ResNet-18 and MobileNet V2 at 224x224, batch 1 and 8, onnxruntime CPU with 2 threads.
The peer is quantize_static (QDQ, uint8 activations, int8 weights, per tensor) of the
onnx-float file, calibrated on 8 images. The models are calibrated on random images.
The int32-add export's speed depends on the fractional lengths where a residual add needs
an accumulator: the line "graph:" says how many of those adds run inside a QLinearConv and
how many convolutions take the float path; the 8-bit-add export is QLinearConv and
QLinearAdd only, plus a Clip after every signed requantization (the format is
symmetric, +-127, and uint8 with zero point 128 reaches -128): the same file with its
Clips removed (not exact) is timed beside it to show what they cost. The pure-integer
PyTorch reference executor (int64 carrier) is timed too, for the record. Sessions take
turns in blocks, medians reported.
"""

import argparse
import tempfile
import time
from pathlib import Path

import onnx
import onnxruntime as ort
import torch

from f8lab.export import export_onnx, integerize
from f8lab.export.onnx.speed import ort_static_quantize, time_onnx
from f8lab.models import build_model, from_float
from f8lab.quant import QuantConfig


def calibrated_model(name: str, quant: QuantConfig) -> torch.nn.Module:
    torch.manual_seed(0)
    float_model = build_model(name).train()
    with torch.no_grad():
        float_model(torch.rand(4, 3, 224, 224))
    model = from_float(float_model, quant).train()
    with torch.no_grad():
        model(torch.rand(4, 3, 224, 224))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"onnxruntime {ort.__version__}, {args.threads} threads, median of {args.repeats} runs")
    folder = Path(tempfile.mkdtemp())
    for name in ("resnet18", "mobilenet_v2"):
        model = calibrated_model(name, QuantConfig())
        eight = calibrated_model(name, QuantConfig(residual="int8"))
        files = {"f8lab int8": export_onnx(model, folder / f"{name}_int8.onnx"),
                 "f8lab int8, 8-bit add": export_onnx(eight, folder / f"{name}_int8_add8.onnx"),
                 "fp32": export_onnx(model, folder / f"{name}_fp32.onnx", "onnx-float")}
        files["8-bit add without Clips (not exact)"] = without_clips(files["f8lab int8, 8-bit add"])
        calibration = (torch.randint(0, 256, (8, 3, 224, 224), generator=torch.Generator()
                                     .manual_seed(1)).float() / 256).numpy()
        files["ort quantize_static"] = ort_static_quantize(
            files["fp32"], folder / f"{name}_ort_qdq.onnx", calibration)
        nodes = onnx.load(files["f8lab int8"]).graph.node
        ops = [node.op_type for node in nodes]
        fed = {name for node in nodes if node.op_type == "QLinearConv" for name in node.input}
        joins = sum(node.op_type == "Concat" and node.output[0] in fed for node in nodes)
        print(f"{name} graph: {ops.count('QLinearConv')} QLinearConv ({joins} with a "
              f"residual shortcut inside), {ops.count('Conv')} float Conv (QDQ)")
        integer = integerize(model)
        for batch in (1, 8):
            x = (torch.randint(0, 256, (batch, 3, 224, 224)).float() / 256).numpy()
            ms = time_onnx(files, x, args.repeats, args.threads)
            start = time.perf_counter()
            with torch.no_grad():
                integer(torch.from_numpy(x))
            reference = 1e3 * (time.perf_counter() - start)
            print(f"{name} batch {batch}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in ms.items())
                  + "".join(f"; {k} speed-up over fp32 {ms['fp32'] / ms[k]:.2f}x, over "
                            f"quantize_static {ms['ort quantize_static'] / ms[k]:.2f}x"
                            for k in ("f8lab int8", "f8lab int8, 8-bit add",
                                      "8-bit add without Clips (not exact)"))
                  + f"; PyTorch integer reference {reference:.0f} ms")


if __name__ == "__main__":
    main()
