"""The documentation names only what exists: every file and link, module, command-line option,
code name (function, class, method, setting, column) and desktop-app control that README.md and
docs/*.md mention is looked up in the repository, so the docs cannot drift from the code again.

What is looked up where:
- files: paths in code spans and links (`io/recording.py`, `tests/media.py`, `docs/lab.png`),
  relative to the page, the repository, pose_app/ or any folder of pose_app/; links' #anchors
  against the target page's headings (GitHub's slugs);
- modules: `python -m NAME` and dotted `pose_app.x.y` / `models.x` names;
- options: every `--option` is one of `pose-app`'s parsers' (the real argparse tree), one that
  a script in models/ or examples/ declares (`add_argument`), or one of another tool named on
  the same line (EXTERNAL_OPTIONS);
- code names: identifiers in code spans that look like code (snake_case, CamelCase, dotted,
  called) must occur in the code: as a name, attribute, argument or string of pose_app/,
  models/, tests/ or examples/;
- controls: *italic* names on the desktop app's pages are the window's own texts (menus,
  check boxes, labels), or a phrase of the prose (EMPHASIS);
- the code's own docstrings and comments: the module paths (`io/recording.py`) and dotted names
  (`pose_app.draw.render.draw_poses`) they give exist.
"""

from __future__ import annotations

import argparse
import ast
import re
import unicodedata
from functools import cache
from pathlib import Path

import pytest
from support import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CODE_ROOTS = ("pose_app", "models", "tests", "examples", "docs")
FILE_SUFFIXES = ("py", "md", "toml", "png", "json", "onnx", "ini", "sh", "txt")

# Options of other programs, by the program named on the same line.
EXTERNAL_OPTIONS = {
    "pip": {"--force-reinstall", "--no-deps", "--break-system-packages", "--no-build-isolation"},
    "xvfb-run": {"--server-num", "--auto-servernum"},
    "ray": {"--head", "--address", "--port", "--num-cpus", "--block"},
    "pytest": {"--no-xvfb", "--timeout", "--deselect", "--ignore"},
}
# Code-like words of the docs that are not names in the code: formula variables and placeholders.
NOT_CODE = {"x_frame", "x_input", "H_b", "W_b", "S_start", "S_end", "HEAD_IP"}
# What the docs name of the in-flight int8 rework (pose_app/inference/quantization.py, the
# model's `int8_scheme` metadata, written by models/quantize.py): remove once it is merged.
PENDING = {"int8_scheme", "quantization.py"}
# Files whose text the in-flight int8 rework replaces (its working tree already names what exists).
REWORKED = {"models/quantize.py"}
# Files of other repositories that the docs cite (the development clips' sources).
ELSEWHERE = {"public/exercises/LICENSE.md"}
# Options the docs name as the old spelling of a current one.
OLD_OPTIONS = {"--multi-scale"}  # docs/accuracy-and-speed.md: "`--multi-scale` is now `--scales`"
# Italic words that are emphasis, not controls.
EMPHASIS = {"dropped", "cut", "held out", "set", "retired", "down", "epoch"}


def prose(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def without_code_blocks(text: str) -> str:
    return re.sub(r"```.*?```", "", text, flags=re.S)


def code_spans(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", without_code_blocks(text))


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)


@cache
def python_files() -> list[Path]:
    """The code's files, without this one (whose lists would vouch for the names they hold)."""
    return [path for root in CODE_ROOTS for path in (REPO / root).rglob("*.py")
            if "__pycache__" not in path.parts and path.resolve() != Path(__file__).resolve()]


@cache
def names_in_code() -> frozenset[str]:
    """Every identifier of the code (names, attributes, arguments, definitions, imports) and every
    word of its string literals (CSV columns, JSON keys, settings' names)."""
    names: set[str] = set()
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.keyword) and node.arg:
                names.add(node.arg)
            elif isinstance(node, ast.alias):
                names.update(node.name.split("."))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", node.value))
    return frozenset(names)


@cache
def strings_in_gui() -> frozenset[str]:
    """The string literals of the desktop app's modules (its menus, check boxes and labels), with
    Qt's & accelerator marks removed."""
    found = set()
    for path in (REPO / "pose_app" / "gui").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value.replace("&", ""))
    return frozenset(found)


def pose_app_options() -> set[str]:
    from pose_app.cli.main import build_parser

    options: set[str] = set()

    def collect(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            options.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    collect(sub)

    collect(build_parser())
    return options


def script_options() -> set[str]:
    """The options the scripts of models/ and examples/ declare with add_argument."""
    options = set()
    for path in python_files():
        if path.parts[len(REPO.parts)] not in ("models", "examples"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
                options.update(arg.value for arg in node.args
                               if isinstance(arg, ast.Constant) and str(arg.value).startswith("--"))
    return options


# --- files, links and anchors ----------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but hyphens and underscores
    dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in without_code_blocks(prose(page)).splitlines() if line.startswith("#")}


def file_exists(name: str, page: Path) -> bool:
    name = name.rstrip("/")
    if (page.parent / name).exists() or (REPO / name).exists() or (REPO / "pose_app" / name).exists():
        return True
    folders = [path for path in (REPO / "pose_app").iterdir() if path.is_dir()]
    if any((folder / name).exists() for folder in folders):
        return True
    # A bare module name (`recording.py`) names a file somewhere in the code.
    return "/" not in name and any(path.name == name for path in python_files())


FILE_IN_SPAN = re.compile(r"(?<![\w.$~{<:/-])((?:[\w.-]+/)*[\w-]+\.(?:" + "|".join(FILE_SUFFIXES) + r"))(?![\w/])")


def users_file(name: str) -> bool:
    """A file of the user's in an example: a placeholder (OUT.png, FILE.ini), a run's output
    (runs/...), or one of the examples' names."""
    stem = Path(name).stem
    return (stem.isupper() or "YYYY" in stem or name.startswith("runs/") or stem in ("x", "out", "shot", "view")
            or re.fullmatch(r"x-\d+", stem) is not None)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_file_and_link_the_docs_name_exists(page):
    text = prose(page)
    missing = []
    for span in code_spans(text):
        if "{stem}" in span or "<" in span or "*" in span:
            continue  # a pattern, not a file
        for name in FILE_IN_SPAN.findall(span):
            if users_file(name) or name in ELSEWHERE | PENDING:
                continue
            if not file_exists(name, page):
                missing.append(f"`{name}`")
    for target in re.findall(r"\]\(([^)\s]+)\)", without_code_blocks(text)):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            missing.append(f"link {target}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            missing.append(f"link {target} (no such heading)")
    assert missing == [], f"{page.name} names what does not exist: {', '.join(missing)}"


# --- modules ------------------------------------------------------------------------------------


def module_file(dotted: str) -> Path | None:
    """The file of a module or package of the repository, None when there is none."""
    path = REPO.joinpath(*dotted.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py", path / "__main__.py"):
        if candidate.is_file():
            return candidate
    return None


def defined_in(path: Path, imported: bool = True) -> set[str]:
    """The names a module defines (and, with `imported`, imports) at its top level."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(target.id for target in targets if isinstance(target, ast.Name))
        elif imported and isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_module_the_docs_name_exists(page):
    text = prose(page)
    named = set(re.findall(r"python -m ([\w.]+)", text))
    named |= {name for span in code_spans(text) for name in re.findall(r"\b((?:pose_app|models)(?:\.\w+)+)", span)}
    missing = []
    for name in sorted(named):
        if name in ("pytest", "pip", "venv", "pose_app"):
            continue
        # pose_app.x.y.Name: a module, then maybe a name in it.
        parts = name.split(".")
        prefixes = [".".join(parts[:k]) for k in range(len(parts), 0, -1)]
        module = next((prefix for prefix in prefixes if module_file(prefix)), None)
        rest = parts[len(module.split(".")):] if module else parts
        # The first name after the module is defined there; a method or field after it is in the code.
        if module is None or (rest and rest[0] not in defined_in(module_file(module))) or any(
                part not in names_in_code() for part in rest[1:]):
            missing.append(name)
    assert missing == [], f"{page.name} names modules that do not exist: {', '.join(missing)}"


# --- options ------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_option_the_docs_name_exists(page):
    known = pose_app_options() | script_options()
    missing = []
    for line in prose(page).splitlines():
        external = set().union(*(options for tool, options in EXTERNAL_OPTIONS.items() if tool in line))
        for option in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", line):
            if option not in known | external | OLD_OPTIONS:
                missing.append(option)
    assert missing == [], f"{page.name} names options no command has: {', '.join(sorted(set(missing)))}"


# --- code names ---------------------------------------------------------------------------------

CODE_NAME = re.compile(r"(?<![\w./<-])([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(\(?)")


def looks_like_code(name: str, called: bool) -> bool:
    return called or "_" in name.strip("_") or "." in name or bool(re.match(r"[A-Z][a-z0-9]+[A-Z]", name))


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_code_name_the_docs_give_is_in_the_code(page):
    missing = []
    for span in code_spans(prose(page)):
        if "=" in span.replace("==", "") and " " in span or "<" in span:
            continue  # a formula or a pattern with placeholders
        if FILE_IN_SPAN.search(span) or re.search(r"\.(csv|mp4|mkv|avi|trc|mot|svg|pdf|jpg|whl|so|ps1)\b", span):
            continue  # a file name (checked above) or a user's file
        for name, called in CODE_NAME.findall(span):
            if not looks_like_code(name, bool(called)) or re.fullmatch(r"feature_\d+|feature_[A-Z]", name):
                continue
            absent = [part for part in name.split(".") if part not in names_in_code()]
            if absent and not set(absent) <= NOT_CODE | PENDING:
                missing.append(f"`{span}`")
    assert missing == [], f"{page.name} names code that does not exist: {', '.join(sorted(set(missing)))}"


# --- the desktop app's controls -----------------------------------------------------------------

# The pages that name the window's controls (streaming.md's italics are TouchDesigner's).
CONTROL_PAGES = [REPO / "docs" / name for name in ("desktop-app.md", "architecture.md", "explainer.md", "reps.md",
                                                   "angles.md")] + [REPO / "README.md"]


@pytest.mark.parametrize("page", CONTROL_PAGES, ids=lambda page: page.name)
def test_every_control_the_docs_name_is_in_the_window(page):
    """*Max speed*, *File → Open camera…*, *View → Angle plot*: each part is a text of the window."""
    texts = strings_in_gui()
    missing = []
    for italic in re.findall(r"(?<![*\w])\*([^*\n]+?)\*(?![*\w])", without_code_blocks(prose(page))):
        if italic.lower() in EMPHASIS or italic.startswith(("Generated", "The screenshot", "cut")):
            continue
        for part in (part.strip() for part in re.split(r"→|:", italic)):
            if part and not any(part.rstrip("…").lower() in text.lower() for text in texts):
                missing.append(f"*{italic}*")
                break
    assert missing == [], f"{page.name} names controls the window does not have: {', '.join(missing)}"


# --- the code's docstrings and comments -------------------------------------------------------


def dotted_name_exists(dotted: str) -> bool:
    """`pose_app.x.y` / `models.x.Name`: a module, then at most a name it defines and the code's
    names after that."""
    parts = dotted.split(".")
    for count in range(len(parts), 0, -1):
        path = module_file(".".join(parts[:count]))
        if path is not None:
            rest = parts[count:]
            return not rest or (rest[0] in defined_in(path) and all(part in names_in_code() for part in rest[1:]))
    return False


def test_the_codes_docstrings_and_comments_name_modules_that_exist():
    missing = []
    for path in python_files():
        where = path.relative_to(REPO).as_posix()
        if where in REWORKED:
            continue
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"(?<![\w./-])((?:[\w.-]+/)*[\w-]+\.py)\b", text):
            name = match.group(1)
            if name.startswith("cv2/"):
                continue  # opencv-python's own files
            if not file_exists(name, path) and name not in PENDING:
                missing.append(f"{where}:{text.count(chr(10), 0, match.start()) + 1} {name}")
        for match in re.finditer(r"\b(?:pose_app|models)(?:\.\w+)+", text):
            name = match.group(0)
            if name.startswith("pose_app.assets") or name.endswith((".py", ".onnx")):
                continue  # the models folder (assets/, installed as pose_app/assets), file names
            if not dotted_name_exists(name):
                missing.append(f"{where}:{text.count(chr(10), 0, match.start()) + 1} {name}")
    assert missing == [], "names of modules that do not exist:\n" + "\n".join(missing)


def code_file(name: str, page: Path) -> Path | None:
    """The Python file a page means by `name` (a path or a bare module file name)."""
    for candidate in [page.parent / name, REPO / name, REPO / "pose_app" / name,
                      *((folder / name) for folder in (REPO / "pose_app").iterdir() if folder.is_dir())]:
        if candidate.is_file():
            return candidate
    matches = [path for path in python_files() if path.name == name]
    return matches[0] if len(matches) == 1 else None


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_a_name_the_docs_place_in_a_module_is_defined_there(page):
    """`FramePoses` (`core/poses.py`), `Recording` (`io/recording.py`): the module defines it."""
    wrong = []
    for name, module in re.findall(r"`([A-Za-z_][\w.]*)`[ ,]*\(`?((?:[\w-]+/)*[\w-]+\.py)", prose(page)):
        path = code_file(module, page)
        if path is not None and name.split(".")[0] not in defined_in(path, imported=False):
            wrong.append(f"`{name}` ({module})")
    assert wrong == [], f"{page.name} places names in modules that do not define them: {', '.join(wrong)}"
