"""Paths, markers and waits the test files share (conftest.py holds only fixtures and hooks)."""

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
MEDIA = SHARED / "media"
COCO_DEV = SHARED / "data" / "coco-dev"
COCO_TRAIN = SHARED / "data" / "coco-train"
# Development clips with hard poses, kept outside the repository (docs/development.md).
DEV_CLIPS = Path.home() / ".cache" / "pose-app" / "dev-clips"

requires_shared = pytest.mark.skipif(
    not (SHARED / "README.md").is_file(),
    reason="../shared (PoseNet weights, COCO subsets, videos) is absent; users do not have it",
)

# Qt waits are generous: the CI machine may be busy.
GUI_WAIT_MS = 60_000


def wait_for_result(qtbot, window, condition=lambda result: True):
    """The window's next shown result (ViewResult) satisfying `condition`."""
    seen = []
    window.frame_shown.connect(seen.append)
    try:
        qtbot.waitUntil(lambda: any(condition(r) for r in seen), timeout=GUI_WAIT_MS)
    finally:
        window.frame_shown.disconnect(seen.append)
    return next(r for r in seen if condition(r))


def committed_posenet(model_name: str):
    """The PyTorch PoseNet with the weights of the committed assets/models/<model_name>.onnx
    (its width and output stride from the file's metadata), in eval mode: Google's weights on a
    fresh clone, without ../shared."""
    import onnx
    import torch
    from onnx import numpy_helper

    from models.export_onnx import ASSETS_DIR
    from models.posenet import PoseNet, PoseNetConfig

    proto = onnx.load(ASSETS_DIR / f"{model_name}.onnx")
    props = {p.key: p.value for p in proto.metadata_props}
    model = PoseNet(PoseNetConfig(float(props["width_multiplier"]), int(props["output_stride"])))
    # The exporter names each weight after the module path inside OnnxPoseNet ("model.<name>").
    state = {
        t.name.removeprefix("model."): torch.from_numpy(numpy_helper.to_array(t).copy())
        for t in proto.graph.initializer
        if t.name.startswith("model.")
    }
    model.load_state_dict(state, strict=True)  # every parameter, nothing else
    return model.eval()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def http_server(folder: Path) -> Iterator[str]:
    """Serves `folder` over HTTP on the loopback address (a free port) while the block runs;
    yields the base URL, e.g. `http://127.0.0.1:41234`."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, name="test http server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
