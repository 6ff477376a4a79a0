"""pose_app.inference.quantization: what a CPU offers for int8 dot products (read from fake
/proc/cpuinfo texts) and which int8 path a model runs (from its metadata)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pose_app.cli.main import main
from pose_app.errors import PoseAppError
from pose_app.inference.quantization import (
    cpu_int8_features,
    int8_features_from_cpuinfo,
    int8_path,
    int8_scheme,
    model_metadata,
)

# Abridged from real machines' /proc/cpuinfo (first processor only, other lines kept short).
AVX2_EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni vaes vpclmulqdq
bugs\t\t: sysret_ss_attrs
"""
AVX512_VNNI_XEON = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz
flags\t\t: fpu sse sse2 avx avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bitalg
"""
AVX_VNNI_LAPTOP = """processor\t: 0
model name\t: 12th Gen Intel(R) Core(TM) i7-1260P
flags\t\t: fpu sse sse2 avx avx2 fma avx_vnni
"""
AVX512_NO_VNNI = """processor\t: 0
model name\t: Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz
flags\t\t: fpu sse sse2 avx avx2 avx512f avx512dq avx512cd avx512bw avx512vl
"""
AMX_XEON = """processor\t: 0
flags\t\t: avx2 avx512f avx512bw avx512_vnni amx_bf16 amx_tile amx_int8
"""
OLD_X86 = """processor\t: 0
flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx
"""
GRAVITON2 = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
"""
GRAVITON3 = """processor\t: 0
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp sve i8mm bf16
"""
CORTEX_A72 = """processor\t: 0
Features\t: fp asimd evtstrm crc32 cpuid
"""


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        (AVX2_EPYC, "avx2"),
        (AVX512_VNNI_XEON, "avx512-vnni"),
        (AVX_VNNI_LAPTOP, "avx-vnni"),
        (AVX512_NO_VNNI, "avx512"),
        (AMX_XEON, "amx-int8"),
        (OLD_X86, "sse"),
        (GRAVITON2, "neon-dotprod"),
        (GRAVITON3, "neon-i8mm"),
        (CORTEX_A72, "neon"),
        ("", "unknown"),
        ("processor\t: 0\nmodel name\t: something\n", "unknown"),
    ],
)
def test_int8_features_from_cpuinfo(cpuinfo: str, expected: str) -> None:
    assert int8_features_from_cpuinfo(cpuinfo) == expected
    assert cpu_int8_features(cpuinfo) == expected


def test_this_cpu_is_named() -> None:
    known = {"amx-int8", "avx512-vnni", "avx-vnni", "avx512", "avx2", "sse", "neon-i8mm", "neon-dotprod", "neon", "unknown"}
    assert cpu_int8_features() in known
    assert cpu_int8_features() == cpu_int8_features()  # cached, stable


FLOAT = {"model_name": "posenet-075", "weights_source": "Google PoseNet, converted by models/convert.py"}
OLD_INT8 = {  # posenet-075-int8 before the int8_scheme key: full-range int8 weights
    "model_name": "posenet-075-int8",
    "weights_source": "Google PoseNet; int8-quantised by models/quantize.py (onnxruntime quantize_static, ...)",
}
PAIR_BOUNDED = {**OLD_INT8, "int8_scheme": "u8s8-pair-bounded"}


def test_int8_scheme_from_metadata() -> None:
    assert int8_scheme(FLOAT) is None
    assert int8_scheme({}) is None
    assert int8_scheme(OLD_INT8) == "u8s8"
    assert int8_scheme({"model_name": "mine-int8"}) == "u8s8"
    assert int8_scheme(PAIR_BOUNDED) == "u8s8-pair-bounded"
    assert int8_scheme({"model_name": "x", "int8_scheme": "u8u8"}) == "u8u8"


def test_int8_path_says_when_u8s8_may_saturate() -> None:
    assert int8_path(FLOAT, "avx2") is None
    # Full-range int8 weights overflow vpmaddubsw pairs on x86 without VNNI only.
    assert int8_path(OLD_INT8, "avx2") == "int8 u8s8 (avx2 without VNNI: may saturate)"
    assert int8_path(OLD_INT8, "avx512") == "int8 u8s8 (avx512 without VNNI: may saturate)"
    assert int8_path(OLD_INT8, "avx512-vnni") == "int8 u8s8 (avx512-vnni)"
    assert int8_path(OLD_INT8, "avx-vnni") == "int8 u8s8 (avx-vnni)"
    assert int8_path(OLD_INT8, "neon-dotprod") == "int8 u8s8 (neon-dotprod)"
    # Schemes whose weight pairs are bounded never saturate.
    assert int8_path(PAIR_BOUNDED, "avx2") == "int8 u8s8-pair-bounded (avx2)"
    assert int8_path({**FLOAT, "int8_scheme": "u8s8-reduce-range"}, "avx512") == "int8 u8s8-reduce-range (avx512)"
    assert int8_path({**FLOAT, "int8_scheme": "u8u8"}, "avx2") == "int8 u8u8 (avx2)"
    # Without features given, this CPU's.
    assert int8_path(PAIR_BOUNDED) == f"int8 u8s8-pair-bounded ({cpu_int8_features()})"


def test_model_metadata_reads_onnx_properties(tmp_path: Path) -> None:
    from models.quantize import FLOAT_MODEL, INT8_MODEL

    assert int8_path(model_metadata(FLOAT_MODEL)) is None
    shipped = model_metadata(INT8_MODEL)
    assert int8_scheme(shipped) == "u8s8-pair-bounded"
    assert int8_path(shipped, "avx2") == "int8 u8s8-pair-bounded (avx2)"
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00 not a model")
    with pytest.raises(PoseAppError, match="cannot load model"):
        model_metadata(bad)


def test_bench_says_which_int8_path_runs(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "--frames", "2", "--presets", "fast", "--provider", "cpu", "--json", str(out)]) == 0
    expected = f"int8 u8s8-pair-bounded ({cpu_int8_features()})"
    assert f"posenet-075-int8 runs {expected}" in capsys.readouterr().out.splitlines()
    assert json.loads(out.read_text())["results"][0]["int8_paths"] == {"posenet-075-int8": expected}
    # A float model: no int8 line.
    assert main(["bench", "--frames", "2", "--presets", "fast", "--provider", "cpu", "--model", "posenet-075"]) == 0
    assert " runs int8 " not in capsys.readouterr().out
