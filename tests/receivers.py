"""Real receivers for the streaming tests, on 127.0.0.1 only, ports chosen free at runtime: a
python-osc UDP server that keeps each frame's messages together, a websockets client that keeps
every text message, and a WebSocket client that connects and then never reads (`pose-app bench
--stream`'s)."""

from __future__ import annotations

import json
import random
import socket
import threading
import time

from pythonosc import dispatcher, osc_server
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from pose_app.run.bench import stalled_websocket_client

WAIT_S = 30.0  # bounded waits: the machine may be busy


# Ports for servers the tests start later are taken below the ephemeral range: a client retrying
# to connect to a port in that range before its server listens can be handed that very port as its
# own source port and connect to itself (TCP simultaneous open), taking the port from the server.
SERVER_PORTS = range(20000, 32000)


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 free now, outside the ephemeral range (see SERVER_PORTS)."""
    for port in random.sample(SERVER_PORTS, 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free TCP port in 20000-31999")


class OscReceiver:
    """python-osc's BlockingOSCUDPServer on 127.0.0.1 (one thread: datagrams are handled in
    order). `frames`: per /pose/frame (or /poses) message, (arrival time, address, args, the
    messages that followed it in its bundle as {address: args})."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, str, tuple, dict[str, tuple]]] = []
        routes = dispatcher.Dispatcher()
        routes.set_default_handler(self._message)
        self.server = osc_server.BlockingOSCUDPServer(("127.0.0.1", 0), routes)
        self.server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def _message(self, address: str, *args) -> None:
        if address in ("/pose/frame", "/poses"):
            self.frames.append((time.perf_counter(), address, args, {}))
        else:
            assert self.frames, f"{address} before any /pose/frame"
            assert address not in self.frames[-1][3], f"{address} twice in one bundle"
            self.frames[-1][3][address] = args

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + WAIT_S
        while len(self.frames) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # and nothing more comes

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class WebSocketCollector:
    """A websockets client in a thread: connects to ws://127.0.0.1:port (retrying until the
    server is up), keeps every message (parsed JSON) until the server closes the connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[dict] = []
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                with connect(f"ws://127.0.0.1:{self.port}", open_timeout=5) as client:
                    self.connected.set()
                    try:
                        for text in client:
                            self.messages.append(json.loads(text))
                    except ConnectionClosed:
                        pass
                    return
            except OSError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.05)

    def join(self) -> None:
        self._thread.join(WAIT_S)


def never_reading_client(port: int) -> socket.socket:
    """A WebSocket client that never reads a message (bench's stalled client), connected as soon
    as the server listens."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            return stalled_websocket_client(port)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
