"""What `pip install .` puts on a user's machine: every module of pose_app and the shipped models.

A package folder missing from pyproject.toml's list installs without its modules, and the app
then fails on its first import (`No module named 'pose_app.inference.families'`) although every
test passes on the source tree. The wheel test builds the real wheel from a copy of the tree."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import zipfile

import pytest
from support import REPO

PACKAGE = REPO / "pose_app"
SETUPTOOLS_MAJOR = 77  # [build-system] requires in pyproject.toml


def source_modules() -> set[str]:
    return {path.relative_to(REPO).as_posix() for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts}


def test_every_package_folder_is_listed_in_pyproject():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    folders = {".".join(path.parent.relative_to(REPO).parts) for path in PACKAGE.rglob("__init__.py")}
    assert folders - listed == set(), "add these packages to [tool.setuptools] packages in pyproject.toml"
    assert listed - folders == {"pose_app.assets"}  # the models folder, mapped from assets/


@pytest.mark.slow
def test_the_wheel_holds_every_module_and_the_models(tmp_path):
    # pyproject.toml's build requirement; pip would fetch it into an isolated environment, which
    # needs an index: this test builds with the one installed here instead.
    try:
        found = int(importlib.metadata.version("setuptools").split(".")[0])
    except importlib.metadata.PackageNotFoundError:
        found = 0
    if found < SETUPTOOLS_MAJOR:
        pytest.skip(f"setuptools >= {SETUPTOOLS_MAJOR} is not installed in this environment")
    tree = tmp_path / "tree"
    for name in ("pyproject.toml", "README.md", "NOTICE"):
        tree.mkdir(exist_ok=True)
        shutil.copy2(REPO / name, tree / name)
    shutil.copytree(PACKAGE, tree / "pose_app", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "assets", tree / "assets")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(tree), "--no-deps", "--no-build-isolation", "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False)
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("pose_app-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert source_modules() - names == set()
    models = {path.name for path in (REPO / "assets" / "models").glob("*.onnx")}
    assert models and {f"pose_app/assets/models/{name}" for name in models} <= names
