"""Where the shipped ONNX models live, and how a --model argument resolves to a file."""

from __future__ import annotations

from pathlib import Path

from pose_app.errors import PoseAppError

# Installed wheels carry assets/ as the package pose_app.assets; a source checkout has it
# beside the package.
_PACKAGE = Path(__file__).resolve().parent.parent  # pose_app/
_MODEL_DIRS = (
    _PACKAGE / "assets" / "models",
    _PACKAGE.parent / "assets" / "models",
)

# Short name -> what it is for. The default (the balanced preset's model) comes first.
SHIPPED_MODELS = {
    "posenet-075-int8": "MobileNetV1 0.75, output stride 16, int8: about 2x faster on CPU, same accuracy",
    "posenet-075": "MobileNetV1 0.75, output stride 16, float: exact feature maps; for GPU providers",
    "posenet-050": "MobileNetV1 0.50, output stride 16: smallest",
    "posenet-075-s8": "MobileNetV1 0.75, output stride 8: most accurate, about 2.5x the time",
    "movenet-lightning": "MoveNet SinglePose Lightning, 192 px person crops: one person, fitness-trained, fast",
    "movenet-thunder": "MoveNet SinglePose Thunder, 256 px person crops: one person, fitness-trained, most accurate",
}
DEFAULT_MODEL = "posenet-075-int8"


def shipped_model_dir() -> Path:
    for directory in _MODEL_DIRS:
        if (directory / f"{DEFAULT_MODEL}.onnx").is_file():
            return directory
    raise PoseAppError(
        "the shipped models are missing (looked in "
        + ", ".join(str(d) for d in _MODEL_DIRS)
        + "); reinstall pose-app or pass --model PATH"
    )


def resolve_model(model: str | Path | None) -> Path:
    """A shipped model name (e.g. 'posenet-050') or a path to an .onnx file -> an existing path."""
    if model is None:
        model = DEFAULT_MODEL
    if str(model) in SHIPPED_MODELS:
        path = shipped_model_dir() / f"{model}.onnx"
        if not path.is_file():
            raise PoseAppError(f"shipped model {model!r} is missing at {path}; reinstall pose-app")
        return path
    path = Path(model).expanduser()
    if not path.is_file():
        raise PoseAppError(
            f"model not found: {model} (give a path to an .onnx file or one of: "
            + ", ".join(SHIPPED_MODELS)
            + ")"
        )
    return path
