"""The streaming options of `pose-app process` (--osc, --ws and what they send) and the
StreamConfig they make (io/stream.py; the desktop app stores the same settings by the same names)."""

from __future__ import annotations

import argparse

from pose_app.cli.options import non_negative_int
from pose_app.errors import PoseAppError
from pose_app.io.pose_messages import OSC_FORMATS
from pose_app.io.stream_config import StreamConfig, parse_endpoint


def add_stream_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "live streaming",
        "Send every processed frame's poses to creative tools as it is made (docs/streaming.md). Files "
        "then play at their own speed (--max-speed: as fast as possible); cameras and streams as they come.",
    )
    group.add_argument("--osc", metavar="HOST:PORT",
                       help="send OSC over UDP to HOST:PORT (e.g. 127.0.0.1:9000): one bundle per frame")
    group.add_argument("--osc-format", choices=OSC_FORMATS, default="bundle",
                       help="bundle: /pose/frame, /pose/<id>/<keypoint>, ... messages; array: one /poses "
                       "message per frame (default bundle)")
    group.add_argument("--osc-pixels", action="store_true",
                       help="OSC x, y in original-frame pixels (default: 0..1 of the frame's width and height)")
    group.add_argument("--ws", metavar="HOST:PORT",
                       help="serve WebSocket clients at HOST:PORT (e.g. 127.0.0.1:8765; 0.0.0.0 for every "
                       "interface): one JSON text message per frame")
    group.add_argument("--ws-allow-origin", action="append", default=[], metavar="ORIGIN",
                       help="also let in web pages from ORIGIN (e.g. https://studio.example.com; '*' for any page): by "
                       "default only pages served by this machine, local files and programs that send no origin connect")
    group.add_argument("--ws-wait-clients", type=non_negative_int, default=0, metavar="N",
                       help="wait until N WebSocket clients are connected before the first frame (default 0)")
    group.add_argument("--stream-angles", action="store_true",
                       help="also send joint and segment angles (degrees), as the angles CSV has them")
    group.add_argument("--max-speed", action="store_true",
                       help="while streaming, process files as fast as possible instead of at their own frame rate")


def stream_config_from_args(args: argparse.Namespace) -> StreamConfig:
    """The StreamConfig of the options given (off without --osc and --ws); PoseAppError on a
    malformed HOST:PORT or an option that needs --osc or --ws."""
    osc = getattr(args, "osc", None)
    ws = getattr(args, "ws", None)
    config = StreamConfig(
        osc=parse_endpoint(osc, "--osc") if osc is not None else None,
        osc_format=getattr(args, "osc_format", "bundle"),
        osc_pixels=getattr(args, "osc_pixels", False),
        ws=parse_endpoint(ws, "--ws") if ws is not None else None,
        stream_angles=getattr(args, "stream_angles", False),
        ws_wait_clients=getattr(args, "ws_wait_clients", 0),
        ws_allow_origins=tuple(origin.strip().rstrip("/") for origin in getattr(args, "ws_allow_origin", []) or []),
    )
    if config.osc is None and (config.osc_pixels or config.osc_format != "bundle"):
        raise PoseAppError("--osc-format and --osc-pixels say how to send OSC: use them with --osc HOST:PORT")
    if config.ws is None and config.ws_wait_clients:
        raise PoseAppError("--ws-wait-clients waits for WebSocket clients: use it with --ws HOST:PORT")
    if config.ws is None and config.ws_allow_origins:
        raise PoseAppError("--ws-allow-origin says which web pages may connect: use it with --ws HOST:PORT")
    if not config.enabled and (config.stream_angles or getattr(args, "max_speed", False)):
        raise PoseAppError("--stream-angles and --max-speed are for live streaming: use them with --osc or --ws")
    return config
