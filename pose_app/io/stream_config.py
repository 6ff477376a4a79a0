"""Where and what to stream (`StreamConfig`, `Endpoint`): the options of `--osc`/`--ws` as the
command line, the app's settings and io/stream.py's senders read them."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from typing import Any

from pose_app.errors import PoseAppError, one_line

# What the WebSocket server lets in. The stream is for tools on this machine (and, when bound to
# other interfaces, the network the user chose): a web page in the user's browser must not read
# the body's pose from it. Browsers send the page's origin; a WebSocket is accepted from a page
# served by this machine (http(s)://localhost, 127.x.x.x, [::1], any port), from a local file
# (file:// pages send "null") and from programs that send no origin (TouchDesigner, Python...);
# `--ws-allow-origin` adds others ("*": any).
LOCAL_ORIGINS = (None, "null", re.compile(r"^https?://(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])(:\d{1,5})?$"))
ANY_ORIGIN = "*"
# Hosts that mean "every interface".
ALL_INTERFACES = ("0.0.0.0", "::", "", "*")
_HOST_PORT = re.compile(r"^(?:\[(?P<ipv6>[^\]]+)\]|(?P<host>[^:\[\]\s]+)):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class Endpoint:
    """A host and port (`HOST:PORT` on the command line; `[::1]:9000` for IPv6 addresses)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_endpoint(text: str, option: str = "--osc") -> Endpoint:
    """'127.0.0.1:9000' -> Endpoint; PoseAppError naming `option` for anything else."""
    match = _HOST_PORT.match(text.strip())
    port = int(match["port"]) if match else -1
    if match is None or not 0 <= port <= 65535:
        raise PoseAppError(f"{option} expects HOST:PORT with a port 0-65535 (e.g. 127.0.0.1:9000), got {text!r}")
    return Endpoint(match["ipv6"] or match["host"], port)


def resolve(endpoint: Endpoint, kind: int, option: str) -> tuple[int, Any]:
    """(address family, socket address) of an endpoint; PoseAppError when the host is unknown."""
    try:
        family, _, _, _, address = socket.getaddrinfo(endpoint.host, endpoint.port, type=kind)[0]
    except (OSError, UnicodeError) as error:
        raise PoseAppError(f"{option} {endpoint}: cannot resolve host {endpoint.host!r} ({one_line(error)})") from None
    return family, address


@dataclass(frozen=True)
class StreamConfig:
    """Where and what to stream. osc / ws: None = off. osc_format: "bundle" (one OSC bundle of
    /pose/... messages per frame) or "array" (one /poses message); osc_pixels: OSC coordinates in
    original-frame pixels instead of 0..1 of the frame; stream_angles: joint and segment angles
    too. ws_wait_clients: `send` waits for this many WebSocket clients before the first frame."""

    osc: Endpoint | None = None
    osc_format: str = "bundle"
    osc_pixels: bool = False
    ws: Endpoint | None = None
    stream_angles: bool = False
    ws_wait_clients: int = 0
    ws_allow_origins: tuple[str, ...] = ()  # web page origins let in besides the local ones ("*": any)

    @property
    def enabled(self) -> bool:
        return self.osc is not None or self.ws is not None

    def warnings(self) -> list[str]:
        """One line per choice that exposes the poses beyond this machine."""
        lines = []
        if self.ws is not None and self.ws.host.strip() in ALL_INTERFACES:
            lines.append(
                f"--ws {self.ws}: the WebSocket stream is served on every network interface: anyone who can "
                "reach this machine can read the poses (bind 127.0.0.1 to keep them local)"
            )
        if ANY_ORIGIN in self.ws_allow_origins:
            lines.append("--ws-allow-origin *: any web page open in a browser here can read the poses")
        return lines
