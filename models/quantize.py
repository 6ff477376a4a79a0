"""Int8 static quantisation of a PoseNet ONNX model with onnxruntime's quantize_static, exact on
every CPU.

    python -m models.quantize [--model assets/models/posenet-075.onnx]
        [--output assets/models/posenet-075-int8.onnx] [--calibration ../shared/data/coco-train/images]
        [--images 100] [--format qdq|qoperator]
        [--scheme u8s8-pair-bounded|u8s8-reduce-range|u8s8] [--rounding gptq|nearest]

The default recipe (`int8_scheme` "u8s8-pair-bounded", written to the model's metadata):

- **uint8 activations x int8 weights (u8s8), QDQ, weights per output channel**: onnxruntime's
  fastest int8 path on x86 (vpdpbusd with VNNI, vpmaddubsw without) and on ARM.
- **Pair-bounded weight scales.** Without VNNI (AVX2, AVX-512 without VNNI: many laptops and
  cloud VMs) vpmaddubsw adds the products of two neighbouring input channels in a saturating
  16-bit lane, so two same-sign weights with |q1| + |q2| > 128 overflow when both activations are
  large (255 x 129 > 32767). The original full-range weights did (about 1-3 % of the pairs in
  most layers, 11 % in the first conv): on a 2-core AMD EPYC (AVX2, no VNNI) it lost 0.039 COCO
  AP on held-out images. Here each output channel of an ordinary conv (first conv, pointwise convs, heads) gets the
  scale `bound / 127`, where `bound` is the largest |w1| + |w2| of a same-sign aligned pair
  (input positions 2j, 2j+1 in onnxruntime's (kh, kw, cin) order; the larger |w| for a pair of
  mixed signs), and rounding keeps every such pair at |q1| + |q2| <= 128 (`PAIR_LIMIT`): no
  overflow is possible, so AVX2, VNNI and ARM compute the same integers. Depthwise convs run on
  exact 16-bit kernels and keep the full `max|w| / 127` scale.
- **GPTQ rounding.** Most of int8's error was weight rounding, not activations (16-bit
  activations with the same int8 weights: no better): the early depthwise and pointwise blocks
  lose most. Each conv's weights are rounded one input position at a time and the rounding
  error is pushed onto the positions not yet rounded, weighted by the inverse of the layer's
  input second moments `H = E[x x^T]` measured on the calibration images (GPTQ, Frantar et al.
  2022). This halves the weight error (mean relative error of feature_13: 0.26 -> 0.12) and makes
  up for the pair bound's coarser scales.
- **Activations**: MinMax calibration, uint8 per tensor. Every ReLU6 output has the range
  [0, 6] anyway; calibration sets only the input's and the heads' ranges.

Calibration: `--images` images (100), evenly spaced over the sorted folder so reruns pick the
same ones, each letterboxed to 353 as the app does; they give both the activation ranges and
GPTQ's statistics. Running it again on the same machine writes an identical file. The ONNX
contract is kept: same input, the same outputs in the same order (dequantised, so heads and
feature maps stay float32), and the same metadata except `model_name` (`<name>-int8`),
`weights_source` (which says how it was quantised), `model_family` (the float model's, or
"posenet") and `int8_scheme`.

Measured on a 2-core AMD EPYC VM (AVX2, no VNNI), onnxruntime 1.32. AP: `pose-app eval` at the
balanced preset (513 px, crops 193x257, the int8 model for both), on coco-dev (78 images) and on
1000 coco-train images that are not calibration images (held out). Speed: the network alone,
heads only, 1 thread, medians of interleaved runs (CPU ms per call; the VM was shared):

| model | coco-dev AP | held-out AP | 513 px frame | 3 crops 193x257 |
|---|---|---|---|---|
| posenet-075 (float) | 0.420 | 0.341 | 52.0 ms | 31.2 ms |
| before: u8s8, full-range weights, nearest rounding | 0.375 | 0.302 | 33.2 ms | 19.8 ms |
| u8s8-pair-bounded, GPTQ (default) | 0.411 | 0.337 | 33.8 ms | 19.8 ms |

coco-dev cannot resolve 0.005: a paired bootstrap over its images puts the standard deviation of
the int8 - float difference at 0.010 (held out: 0.003), and float weights merely rounded to
float16 score 0.417 there. Variants tried (earlier pipeline without any_orientation; AP on 400
held-out images / coco-dev; float 0.328 / 0.420, before 0.292 / 0.377):

| variant | held-out 400 | coco-dev | 513 px frame |
|---|---|---|---|
| before, run on onnxruntime's exact u8u8 kernels (`session.x64quantprecision`; = a VNNI CPU) | 0.327 | 0.407 | slower |
| `reduce_range` (7-bit weights everywhere), nearest | 0.319 | 0.407 | as before |
| 7-bit only for the convs that can saturate (not depthwise), nearest | 0.311 | 0.401 | as before |
| pair-bounded, nearest | 0.316 | 0.404 | as before |
| uint8 weights (u8u8: exact everywhere), nearest | 0.321 | 0.417 | 46 ms |
| 7-bit weights, GPTQ | 0.332 | 0.409 | as before |
| pair-bounded, GPTQ (default) | 0.328 | 0.411 | as before |

Also: per-tensor weights are useless (no confident keypoint in place); float heads (heads
excluded from quantisation), calibration at 513 px (held-out 1000: 0.339) and GPTQ's columns in
order of decreasing input variance changed nothing; clipping the weight pairs that overflow
after nearest rounding, without GPTQ's compensation, wrecks the model; the error of the first
conv alone is small. 7-bit + GPTQ is as good on AVX2; pair-bounded keeps finer weights wherever a
pair allows it and is exact on every CPU. QOperator is slower than QDQ.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

from pose_app.errors import PoseAppError
from pose_app.inference.families.posenet import letterbox
from pose_app.inference.model_info import INPUT_NAME
from pose_app.io.sources import read_image

REPO = Path(__file__).resolve().parent.parent
FLOAT_MODEL = REPO / "assets" / "models" / "posenet-075.onnx"
INT8_MODEL = REPO / "assets" / "models" / "posenet-075-int8.onnx"
CALIBRATION_IMAGES = REPO.parent / "shared" / "data" / "coco-train" / "images"
DEFAULT_CALIBRATION_COUNT = 100

FORMATS = {"qdq": QuantFormat.QDQ, "qoperator": QuantFormat.QOperator}

# Weight schemes (the model's `int8_scheme`): how ordinary convs' weights are scaled.
SCHEMES = {
    "u8s8-pair-bounded": "per-channel int8 weights, every aligned same-sign pair |q1| + |q2| <= 128 (depthwise: full range)",
    "u8s8-reduce-range": "per-channel 7-bit weights (depthwise: 8-bit)",
    "u8s8": "per-channel full-range int8 weights",
}
DEFAULT_SCHEME = "u8s8-pair-bounded"
ROUNDINGS = ("gptq", "nearest")
DEFAULT_ROUNDING = "gptq"

# 255 * 128 = 32640 <= 32767: two uint8 activations times a same-sign weight pair within this
# bound cannot overflow vpmaddubsw's 16-bit lane.
PAIR_LIMIT = 128
INT8_MAX = 127
REDUCED_MAX = 64  # onnxruntime's reduce_range: symmetric int8 weights in [-64, 64]
# GPTQ: the damping added to H's diagonal (a fraction of its mean), as in the GPTQ paper.
GPTQ_DAMPING = 0.01

# Calibration images are letterboxed to this size (the shipped int8 model was calibrated at it;
# 513, the balanced preset's size, was no better: held-out AP 0.339 against 0.340).
CALIBRATION_RESOLUTION = 353


def calibration_paths(folder: Path, count: int) -> list[Path]:
    """`count` .jpg/.png files evenly spaced over the sorted folder listing."""
    paths = sorted(p for p in folder.glob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if count < 1:
        raise PoseAppError(f"calibration image count must be >= 1, got {count}")
    if not paths:
        raise PoseAppError(f"no calibration images (.jpg/.png) in {folder}")
    picks = np.linspace(0, len(paths) - 1, min(count, len(paths))).round().astype(int)
    return [paths[i] for i in picks]


def letterboxed_inputs(
    paths: Sequence[Path], output_stride: int, resolution: int = CALIBRATION_RESOLUTION
) -> list[np.ndarray]:
    """Each calibration image as the app feeds it to the network (float32 NCHW)."""
    return [letterbox(read_image(path), resolution, output_stride)[0] for path in paths]


class LetterboxedImages(CalibrationDataReader):
    """Feeds letterboxed calibration inputs to the quantiser."""

    def __init__(self, blobs: Sequence[np.ndarray]):
        self._inputs: Iterator[np.ndarray] = iter(blobs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        blob = next(self._inputs, None)
        return None if blob is None else {INPUT_NAME: blob}


@dataclass(frozen=True)
class ConvLayer:
    """A Conv node of the float model and what GPTQ needs of it."""

    node: str
    input: str
    weight_name: str
    weight: np.ndarray  # (Cout, Cin/group, kh, kw) float32
    group: int
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilations: tuple[int, int]

    @property
    def depthwise(self) -> bool:
        return self.group > 1


def conv_layers(model: onnx.ModelProto) -> list[ConvLayer]:
    """Every Conv of the model with a constant 4-D weight, in graph order."""
    weights = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    layers = []
    for node in model.graph.node:
        if node.op_type != "Conv" or node.input[1] not in weights or weights[node.input[1]].ndim != 4:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        group = int(attrs.get("group", 1))
        if group not in (1, weights[node.input[1]].shape[0]):
            raise PoseAppError(f"{node.name}: grouped convs other than depthwise are not supported")
        layers.append(ConvLayer(
            node=node.name, input=node.input[0], weight_name=node.input[1], weight=weights[node.input[1]],
            group=group, strides=tuple(attrs.get("strides", (1, 1))), pads=tuple(attrs.get("pads", (0, 0, 0, 0))),
            dilations=tuple(attrs.get("dilations", (1, 1))),
        ))
    return layers


def gemm_rows(weight: np.ndarray) -> np.ndarray:
    """(Cout, Cin, kh, kw) -> (Cout, K), K in onnxruntime's (kh, kw, cin) order: the order its
    int8 GEMM packs (pairs 2j, 2j+1 of it share a vpmaddubsw lane)."""
    return weight.transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)


def from_gemm_rows(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    out_channels, in_channels, kh, kw = shape
    return rows.reshape(out_channels, kh, kw, in_channels).transpose(0, 3, 1, 2)


def aligned_pairs(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two members of every aligned pair (2j, 2j+1) of each row (a row of odd length is
    padded with a 0, as the packed GEMM is)."""
    padded = np.pad(rows, ((0, 0), (0, rows.shape[1] % 2)))
    return padded[:, 0::2], padded[:, 1::2]


def pair_sums(rows: np.ndarray) -> np.ndarray:
    """Per aligned pair: |a| + |b| for a same-sign pair, else the larger |.| (what one 16-bit
    lane can reach, per unit of activation)."""
    a, b = aligned_pairs(rows)
    return np.where(a * b > 0, np.abs(a) + np.abs(b), np.maximum(np.abs(a), np.abs(b)))


def weight_scales(layer: ConvLayer, scheme: str) -> np.ndarray:
    """Per-output-channel scale of the layer's int8 weights under `scheme`."""
    rows = layer.weight.reshape(layer.weight.shape[0], -1).astype(np.float64)
    if layer.depthwise or scheme == "u8s8":
        bound, levels = np.abs(rows).max(axis=1), INT8_MAX
    elif scheme == "u8s8-pair-bounded":
        bound, levels = pair_sums(gemm_rows(layer.weight).astype(np.float64)).max(axis=1), INT8_MAX
    elif scheme == "u8s8-reduce-range":
        bound, levels = np.abs(rows).max(axis=1), REDUCED_MAX
    else:
        raise PoseAppError(f"unknown int8 scheme {scheme!r} (choose from {', '.join(SCHEMES)})")
    return np.where(bound > 0, bound / levels, 1.0)


def _patches(x: np.ndarray, layer: ConvLayer) -> np.ndarray:
    """x (C, H, W) -> (C, positions, kh*kw): each output position's input window (zero padded)."""
    kh, kw = layer.weight.shape[2:]
    top, left, bottom, right = layer.pads
    x = np.pad(x, ((0, 0), (top, bottom), (left, right)))
    (sy, sx), (dy, dx) = layer.strides, layer.dilations
    out_h = (x.shape[1] - dy * (kh - 1) - 1) // sy + 1
    out_w = (x.shape[2] - dx * (kw - 1) - 1) // sx + 1
    taps = [
        x[:, i * dy: i * dy + sy * (out_h - 1) + 1: sy, j * dx: j * dx + sx * (out_w - 1) + 1: sx]
        for i in range(kh) for j in range(kw)
    ]
    return np.stack(taps, axis=-1).reshape(x.shape[0], out_h * out_w, kh * kw)


def input_moments(model: onnx.ModelProto, layers: Sequence[ConvLayer], blobs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Per conv: H = E[x x^T] of its input windows over the calibration inputs, on the float
    model: (K, K) in gemm_rows order for ordinary convs, (C, kh*kw, kh*kw) for depthwise ones."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    names = list(dict.fromkeys(layer.input for layer in layers))
    outputs = {output.name for output in probe.graph.output}
    probe.graph.output.extend(
        helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in names if name not in outputs
    )
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    sums: dict[str, np.ndarray] = {}
    counts = dict.fromkeys((layer.node for layer in layers), 0)
    for blob in blobs:
        activations = dict(zip(names, session.run(names, {INPUT_NAME: blob})))
        for layer in layers:
            windows = _patches(activations[layer.input][0], layer).astype(np.float64)
            if layer.depthwise:
                moment = np.einsum("cpi,cpj->cij", windows, windows, optimize=True)
            else:
                columns = windows.transpose(1, 2, 0).reshape(windows.shape[1], -1)  # (kh, kw, cin) order
                moment = columns.T @ columns
            sums[layer.node] = sums.get(layer.node, 0) + moment
            counts[layer.node] += windows.shape[1]
    return {node: total / counts[node] for node, total in sums.items()}


def gptq_round(
    rows: np.ndarray, moments: np.ndarray, scales: np.ndarray, levels: int, pair_limit: int | None
) -> np.ndarray:
    """Integer weights for `rows` (R, K) at per-row `scales`, |q| <= levels, rounded one column at
    a time with each rounding error pushed onto the later columns through the inverse of the
    input moments (GPTQ). `moments`: (K, K) shared by all rows or (R, K, K). With `pair_limit`,
    every same-sign aligned pair keeps |q_2j| + |q_2j+1| <= pair_limit (the second member is
    clipped and the clipping error compensated like a rounding error)."""
    count, width = rows.shape
    stack = moments[None] if moments.ndim == 2 else moments
    diagonal = np.diagonal(stack, axis1=1, axis2=2)
    eye = np.eye(width)[None]
    damped = stack + (GPTQ_DAMPING * diagonal.mean(axis=1) + 1e-12)[:, None, None] * eye
    # An input that is always 0 (a dead channel, padding): its weights never matter.
    dead = np.diagonal(damped, axis1=1, axis2=2) <= 1e-9 * (diagonal.max(axis=1, keepdims=True) + 1e-12)
    damped = damped + dead[:, :, None] * eye
    # Upper Cholesky factor U of H^-1 (H^-1 = U^T U): row k of U spreads column k's error.
    spread = np.linalg.cholesky(np.linalg.inv(damped)).transpose(0, 2, 1)
    spread = np.broadcast_to(spread, (count, width, width))
    remaining = rows.astype(np.float64).copy()
    scales = scales.astype(np.float64)
    q = np.zeros((count, width), np.int64)
    for k in range(width):
        qk = np.clip(np.round(remaining[:, k] / scales), -levels, levels)
        if pair_limit is not None and k % 2 == 1:
            partner = q[:, k - 1]
            over = (partner * qk > 0) & (np.abs(partner) + np.abs(qk) > pair_limit)
            qk = np.where(over, np.sign(qk) * (pair_limit - np.abs(partner)), qk)
        q[:, k] = qk
        error = (remaining[:, k] - qk * scales) / spread[:, k, k]
        remaining[:, k + 1:] -= error[:, None] * spread[:, k, k + 1:]
    return q


def round_weights(layer: ConvLayer, scales: np.ndarray, scheme: str, moments: np.ndarray | None) -> np.ndarray:
    """The layer's int8 weights (its own shape) at `scales`: GPTQ with `moments`, else nearest."""
    levels = REDUCED_MAX if scheme == "u8s8-reduce-range" and not layer.depthwise else INT8_MAX
    pair_limit = PAIR_LIMIT if scheme == "u8s8-pair-bounded" and not layer.depthwise else None
    if layer.depthwise:
        rows = layer.weight.reshape(layer.weight.shape[0], -1)
    else:
        rows = gemm_rows(layer.weight)
    if moments is None:  # nearest rounding (the pair bound's scales already keep every pair)
        q = np.clip(np.round(rows / scales[:, None]), -levels, levels).astype(np.int64)
    else:
        q = gptq_round(rows, moments, scales, levels, pair_limit)
    return q.reshape(layer.weight.shape) if layer.depthwise else from_gemm_rows(q, layer.weight.shape)


def largest_pair_sum(weight: np.ndarray) -> int:
    """The largest |q1| + |q2| of a same-sign aligned pair of int8 conv weights (Cout, Cin, kh, kw)."""
    a, b = aligned_pairs(gemm_rows(weight.astype(np.int64)))
    return int(np.where(a * b > 0, np.abs(a) + np.abs(b), 0).max(initial=0))


def float_model_metadata(path: Path) -> dict[str, str]:
    """The metadata properties of the pose-app float model at `path`."""
    if not path.is_file():
        raise PoseAppError(f"model not found: {path}")
    props = {prop.key: prop.value for prop in onnx.load(str(path), load_external_data=False).metadata_props}
    if "output_stride" not in props or "model_name" not in props:
        raise PoseAppError(f"{path} is not a pose-app model: metadata output_stride/model_name missing")
    return props


def calibration_description(calibration: Sequence[Path]) -> str:
    """'100 COCO train images' for the default folder, else 'N images from <folder name>'."""
    folders = {path.parent.resolve() for path in calibration}
    if folders == {CALIBRATION_IMAGES.resolve()}:
        return f"{len(calibration)} COCO train images"
    return f"{len(calibration)} images from {', '.join(sorted(folder.name for folder in folders))}"


def quantized_metadata(
    props: dict[str, str],
    fmt: str,
    calibration: Sequence[Path],
    scheme: str = DEFAULT_SCHEME,
    rounding: str = DEFAULT_ROUNDING,
) -> dict[str, str]:
    """The float model's metadata, renamed, with the recipe in weights_source and int8_scheme."""
    rounded = "GPTQ rounding" if rounding == "gptq" else "nearest rounding"
    return {
        **props,
        "model_name": f"{props['model_name']}-int8",
        "model_family": props.get("model_family", "posenet"),
        "weights_source": (
            f"{props['weights_source']}; int8-quantised by models/quantize.py "
            f"(onnxruntime quantize_static, {fmt}, {scheme}: {SCHEMES[scheme]}, {rounded}, "
            f"uint8 activations, MinMax calibration on {calibration_description(calibration)})"
        ),
        "int8_scheme": scheme,
    }


def quantize_model(
    model_path: Path,
    output_path: Path,
    calibration: Sequence[Path],
    fmt: str = "qdq",
    scheme: str = DEFAULT_SCHEME,
    rounding: str = DEFAULT_ROUNDING,
) -> Path:
    """Write the int8 version of `model_path` to `output_path`, calibrated on `calibration`."""
    props = float_model_metadata(model_path)
    if scheme not in SCHEMES:
        raise PoseAppError(f"unknown int8 scheme {scheme!r} (choose from {', '.join(SCHEMES)})")
    if rounding not in ROUNDINGS:
        raise PoseAppError(f"unknown rounding {rounding!r} (choose from {', '.join(ROUNDINGS)})")
    model = onnx.load(str(model_path))
    layers = conv_layers(model)
    scales = {layer.node: weight_scales(layer, scheme) for layer in layers}
    blobs = letterboxed_inputs(calibration, int(props["output_stride"]))
    # quantize_static computes every weight scale as max(|rmin|, |rmax|) / 127: give it ours.
    overrides = {
        layer.weight_name: [{"axis": 0, "rmin": -127.0 * s, "rmax": 127.0 * s} for s in scales[layer.node].tolist()]
        for layer in layers
    }
    output_path.parent.mkdir(parents=True, exist_ok=True)
    # The calibrator writes an augmented copy of the model; keep it out of the working tree.
    with tempfile.TemporaryDirectory() as scratch:
        staged = Path(scratch) / "quantized.onnx"
        quantize_static(
            model_path,
            staged,
            LetterboxedImages(blobs),
            quant_format=FORMATS[fmt],
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"TensorQuantOverrides": overrides},
        )
        quantized = onnx.load(str(staged))
    moments = input_moments(model, layers, blobs) if rounding == "gptq" else {}
    initializers = {init.name: init for init in quantized.graph.initializer}
    for layer in layers:
        weight = initializers.get(f"{layer.weight_name}_quantized")
        scale = initializers.get(f"{layer.weight_name}_scale")
        if weight is None or scale is None:
            raise PoseAppError(f"{layer.node}: quantize_static wrote no int8 weights for {layer.weight_name}")
        q = round_weights(layer, numpy_helper.to_array(scale).astype(np.float64), scheme, moments.get(layer.node))
        if scheme != "u8s8" and not layer.depthwise and largest_pair_sum(q) > PAIR_LIMIT:
            raise PoseAppError(f"{layer.node}: a weight pair exceeds {PAIR_LIMIT} (would saturate without VNNI)")
        weight.CopyFrom(numpy_helper.from_array(q.astype(np.int8), weight.name))
    del quantized.metadata_props[:]
    onnx.helper.set_model_props(quantized, quantized_metadata(props, fmt, calibration, scheme, rounding))
    onnx.save(quantized, str(output_path))
    return output_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m models.quantize", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=FLOAT_MODEL, help="float ONNX model")
    parser.add_argument("--output", type=Path, default=INT8_MODEL, help="int8 ONNX model to write")
    parser.add_argument("--calibration", type=Path, default=CALIBRATION_IMAGES, help="image folder")
    parser.add_argument("--images", type=int, default=DEFAULT_CALIBRATION_COUNT, help="calibration images")
    parser.add_argument("--format", choices=FORMATS, default="qdq")
    parser.add_argument("--scheme", choices=SCHEMES, default=DEFAULT_SCHEME, help="how weights are scaled")
    parser.add_argument("--rounding", choices=ROUNDINGS, default=DEFAULT_ROUNDING, help="how weights are rounded")
    args = parser.parse_args(argv)
    try:
        paths = calibration_paths(args.calibration, args.images)
        out = quantize_model(args.model, args.output, paths, args.format, args.scheme, args.rounding)
    except PoseAppError as error:
        raise SystemExit(f"error: {error}") from None
    print(f"wrote {out} ({args.format}, {args.scheme}, {args.rounding} rounding, calibration on {len(paths)} images)")


if __name__ == "__main__":
    main()
