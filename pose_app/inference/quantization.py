"""Which int8 arithmetic onnxruntime runs on this CPU, and whether an int8 model is exact on it.

onnxruntime's x86 int8 convolutions multiply uint8 activations by int8 weights ("u8s8"). With
VNNI (AVX512-VNNI, AVX-VNNI) or AMX-INT8 every product is summed exactly in 32 bits. With AVX2
or AVX-512 but no VNNI the kernels use `vpmaddubsw`, which adds two neighbouring products (two
neighbouring input channels of one output channel) in a *saturating 16-bit* lane: a pair of
same-sign weights with |w1| + |w2| > 128 (int8 units) overflows once both activations are large
(255 x 129 > 32767). Weights quantised to the full int8 range (the original posenet-075-int8,
scheme "u8s8") do overflow there; 7-bit weights ("u8s8-reduce-range"), weights whose aligned pairs
are bounded by construction ("u8s8-pair-bounded", models/quantize.py) and uint8 weights ("u8u8",
exact 16-bit kernels, slower) cannot. ARM's kernels (udot/sdot/ummla, or 16-bit widening NEON)
are exact.

`cpu_int8_features()` says what this CPU offers for int8 dot products, `int8_path()` what runs
for a model (from its ONNX metadata `int8_scheme`), e.g. "int8 u8s8-pair-bounded (avx2)" or
"int8 u8s8 (avx2 without VNNI: may saturate)".
"""

from __future__ import annotations

import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import onnx

from pose_app.errors import PoseAppError

INT8_SCHEME_KEY = "int8_scheme"
# The scheme of int8 models written before the key existed: full-range int8 weights.
LEGACY_INT8_SCHEME = "u8s8"
# Schemes whose weights cannot overflow a vpmaddubsw pair (|w1| + |w2| <= 128 for every pair).
SATURATION_FREE_SCHEMES = frozenset({"u8s8-pair-bounded", "u8s8-reduce-range", "u8u8"})
# Features whose u8s8 kernels add weight pairs in saturating 16-bit lanes (x86 without VNNI).
SATURATING_FEATURES = frozenset({"avx2", "avx512"})

CPUINFO = Path("/proc/cpuinfo")


def int8_features_from_cpuinfo(text: str) -> str:
    """The best int8 dot-product support named by a Linux /proc/cpuinfo text (its first CPU's
    `flags` on x86, `Features` on ARM): "amx-int8", "avx512-vnni", "avx-vnni", "avx512" (AVX-512
    without VNNI), "avx2", "sse" (x86 without AVX2), "neon-i8mm", "neon-dotprod", "neon", or
    "unknown"."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "flags":
            return _x86_features(set(value.split()))
        if key == "features":
            return _arm_features(set(value.split()))
    return "unknown"


def _x86_features(flags: set[str]) -> str:
    if "amx_int8" in flags and "amx_tile" in flags:
        return "amx-int8"
    if "avx512_vnni" in flags:
        return "avx512-vnni"
    if "avx_vnni" in flags:
        return "avx-vnni"
    if "avx512bw" in flags:
        return "avx512"
    if "avx2" in flags:
        return "avx2"
    return "sse"


def _arm_features(features: set[str]) -> str:
    if "i8mm" in features:
        return "neon-i8mm"
    if "asimddp" in features:
        return "neon-dotprod"
    if "asimd" in features:
        return "neon"
    return "unknown"


def _sysctl(name: str) -> str:
    try:
        result = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=2, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def _macos_features() -> str:
    if platform.machine() == "arm64":
        if _sysctl("hw.optional.arm.FEAT_I8MM") == "1":
            return "neon-i8mm"
        return "neon-dotprod" if _sysctl("hw.optional.arm.FEAT_DotProd") == "1" else "neon"
    leaf7 = set(_sysctl("machdep.cpu.leaf7_features").upper().split())
    if not leaf7:
        return "unknown"
    if "AVX512VNNI" in leaf7:
        return "avx512-vnni"
    if "AVX512BW" in leaf7:
        return "avx512"
    return "avx2" if "AVX2" in leaf7 else "sse"


@lru_cache(maxsize=1)
def _this_cpu() -> str:
    if sys.platform.startswith("linux") and CPUINFO.is_file():
        try:
            return int8_features_from_cpuinfo(CPUINFO.read_text(errors="replace"))
        except OSError:
            return "unknown"
    if sys.platform == "darwin":
        return _macos_features()
    return "unknown"


def cpu_int8_features(cpuinfo: str | None = None) -> str:
    """What this CPU offers for int8 dot products (see int8_features_from_cpuinfo); `cpuinfo`:
    parse this /proc/cpuinfo text instead (tests)."""
    return int8_features_from_cpuinfo(cpuinfo) if cpuinfo is not None else _this_cpu()


def int8_scheme(model_metadata: dict[str, str]) -> str | None:
    """The model's int8 scheme ("u8s8-pair-bounded", "u8u8", ...); None for a float model. An int8
    model from before the `int8_scheme` key (named *-int8 or quantised per weights_source) has
    full-range int8 weights: "u8s8"."""
    scheme = model_metadata.get(INT8_SCHEME_KEY)
    if scheme:
        return scheme
    if model_metadata.get("model_name", "").endswith("-int8") or "int8-quantised" in model_metadata.get(
        "weights_source", ""
    ):
        return LEGACY_INT8_SCHEME
    return None


def may_saturate(scheme: str, features: str) -> bool:
    """Whether u8s8 kernels can overflow this scheme's weights on a CPU with these features."""
    return scheme not in SATURATION_FREE_SCHEMES and features in SATURATING_FEATURES


def int8_path(model_metadata: dict[str, str], features: str | None = None) -> str | None:
    """The int8 arithmetic a model runs with on this CPU (or on one with `features`), e.g.
    "int8 u8s8-pair-bounded (avx2)", "int8 u8s8 (avx2 without VNNI: may saturate)"; None for a
    float model."""
    scheme = int8_scheme(model_metadata)
    if scheme is None:
        return None
    features = cpu_int8_features() if features is None else features
    if may_saturate(scheme, features):
        return f"int8 {scheme} ({features} without VNNI: may saturate)"
    return f"int8 {scheme} ({features})"


def model_metadata(path: str | Path) -> dict[str, str]:
    """The metadata properties of the ONNX file at `path` (weights not loaded)."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # noqa: BLE001 - protobuf raises several unrelated types for bad files
        raise PoseAppError(f"cannot load model {path}: {error}") from None
    return {prop.key: prop.value for prop in model.metadata_props}
