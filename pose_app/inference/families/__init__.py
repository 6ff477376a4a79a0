"""Model families by the name their ONNX files carry in `model_family` (see base.py)."""

from __future__ import annotations

from pose_app.errors import PoseAppError
from pose_app.inference.families import movenet, posenet
from pose_app.inference.families.base import ModelFamily

FAMILIES: dict[str, ModelFamily] = {family.name: family for family in (posenet.FAMILY, movenet.FAMILY)}


def family_of(name: str, path: object = "the model") -> ModelFamily:
    """The family called `name`; PoseAppError naming the file `path` when none is."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise PoseAppError(
            f"{path} is a '{name}' model, which this pose-app cannot run (families: {', '.join(FAMILIES)})"
        ) from None
