"""Streaming live poses to creative tools: OSC over UDP (python-osc) and WebSocket (websockets).

`PoseStreams` is the streaming service of `pose-app process` and the desktop app alike (Qt-free):
`PoseStreams.open(config)` checks the endpoints and starts the senders, `send(frame, poses,
captured_at)` hands a frame over, `close()` stops them. Nothing here runs on the caller's thread
but copying the frame's poses: each sender has its own thread and a bounded queue of
QUEUE_FRAMES frames (io/send_queue.py) that drops the oldest frame when its receiver is slower than the pipeline
(counted in `dropped`); a WebSocket client gets its own thread and queue, so one that never reads
holds up no one. A receiver that is absent (OSC is UDP: nothing waits for it) or goes away costs
nothing.

What a frame's message holds and its encodings are in pose_messages.py. Addresses, units and
receivers: docs/streaming.md.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

from pose_app.core.frames import Frame
from pose_app.core.poses import FramePoses
from pose_app.errors import PoseAppError, one_line, optional_module
from pose_app.io.pose_messages import (
    INSTALL_HINT,
    PoseSnapshot,
    json_text,
    osc_array,
    osc_bundle,
    osc_encoders,
    pose_message,
)
from pose_app.io.send_queue import DropOldestQueue, LatencyRecord
from pose_app.io.stream_config import ANY_ORIGIN, LOCAL_ORIGINS, Endpoint, StreamConfig, resolve

# On close, how long (seconds) a sender gets to encode the frames still queued (it never waits
# for the network: UDP does not, and WebSocket clients have queues of their own).
DRAIN_WAIT_S = 5.0
# The kernel's send buffer per WebSocket client (bytes): what a client that stops reading can
# have waiting before its frames are dropped (a large one would hand it seconds-old poses).
SEND_BUFFER_BYTES = 64 * 1024
# On close, how long (seconds) WebSocket clients get to finish the message in hand before their sockets
# are shut (a client that never reads can block a send for ever).
CLOSE_WAIT_S = 0.5
# Connections served at once (handshakes in progress included): each costs two threads (its
# handler, its reader); those over the cap are closed at once.
MAX_WS_CONNECTIONS = 32
# A client's messages are read and thrown away (the stream only sends): the largest message
# accepted (bytes; a larger one closes that connection) and how many may wait to be read.
WS_MAX_MESSAGE_BYTES = 4096
WS_MAX_QUEUE = 4
# A connection that has not finished its handshake after this long (seconds) is closed.
WS_OPEN_TIMEOUT_S = 5.0
# The WebSocket server's own log: clients that come and go are counted, not printed.
_QUIET = logging.getLogger("pose_app.io.stream")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


# ---------------------------------------------------------------------------- senders


def _websockets_server():
    return optional_module("websockets.sync.server", INSTALL_HINT)


class _Sender:
    """A receiver's thread: takes frames from its queue and delivers them (`_deliver`). An error
    stops it (`error`); frames offered after that are ignored."""

    label = ""

    def __init__(self, config: StreamConfig) -> None:
        self.config = config
        self.queue = DropOldestQueue()
        self._sent = 0
        self.latency = LatencyRecord()
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"pose-app {self.label}", daemon=True)

    @property
    def sent(self) -> int:
        return self._sent

    @property
    def dropped(self) -> int:
        return self.queue.dropped

    def start(self) -> None:
        self._thread.start()

    def offer(self, snapshot: PoseSnapshot) -> None:
        if self.error is None:
            self.queue.put(snapshot)

    def _run(self) -> None:
        while (snapshot := self.queue.get()) is not None:
            try:
                self._deliver(snapshot)
            except (OSError, PoseAppError) as error:
                self.error = f"{self.label} stopped at frame {snapshot.frame}: {one_line(error)}"
                self.queue.close(discard=True)

    def _deliver(self, snapshot: PoseSnapshot) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Send what is queued, then stop."""
        self.queue.close()
        if self._thread.ident is not None:
            self._thread.join(DRAIN_WAIT_S)

    def status(self) -> str:
        """'OSC 127.0.0.1:9000: 120 sent, 0 dropped, latency p50 12.0 ms, p90 15.1 ms'."""
        latency = self.latency.percentiles_ms()
        timing = f", latency p50 {latency[0]:.1f} ms, p90 {latency[1]:.1f} ms" if latency else ""
        return f"{self.label}: {self.sent} sent, {self.dropped} dropped{timing}"

    def short_status(self) -> str:
        """'OSC 120 sent, 0 dropped, 12 ms' (median latency from frame captured to sent)."""
        latency = self.latency.percentiles_ms()
        kind = self.label.split()[0]
        return f"{kind} {self.sent} sent, {self.dropped} dropped" + (f", {latency[0]:.0f} ms" if latency else "")


class OscSender(_Sender):
    """One OSC bundle (or /poses message) per frame to a UDP host and port."""

    def __init__(self, config: StreamConfig) -> None:
        self.label = f"OSC {config.osc}"
        osc_encoders()
        family, self._address = resolve(config.osc, socket.SOCK_DGRAM, "--osc")
        super().__init__(config)
        self._socket = socket.socket(family, socket.SOCK_DGRAM)

    def _deliver(self, snapshot: PoseSnapshot) -> None:
        message = pose_message(snapshot, self.config.stream_angles)
        encode = osc_array if self.config.osc_format == "array" else osc_bundle
        self._socket.sendto(encode(message, self.config.osc_pixels), self._address)
        self.latency.add(snapshot.captured_at)
        self._sent += 1

    def close(self) -> None:
        super().close()
        self._socket.close()


class _Client:
    """One WebSocket connection: its own queue of (text, captured_at), sent by the server's handler
    thread for it. A message is either sent or dropped (replaced in the queue, in hand or queued
    when the client went away or was cut off)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.queue = DropOldestQueue()
        self.sent = 0
        self.lost = 0  # in hand or still queued when the connection ended

    @property
    def dropped(self) -> int:
        return self.queue.dropped + self.lost

    def _discard_received(self) -> None:
        """Read what the client sent (at most WS_MAX_QUEUE messages wait) and throw it away."""
        while True:
            try:
                self.connection.recv(timeout=0)
            except TimeoutError:
                return

    def serve(self, latency: LatencyRecord) -> None:
        """Send queued messages until the queue is closed or the connection ends; what the client
        sends is read and thrown away."""
        item = None
        try:
            while (item := self.queue.get()) is not None:
                self.connection.send(item[0])
                latency.add(item[1])
                self.sent += 1
                self._discard_received()
        except Exception:  # noqa: BLE001 - a client that went away: the others go on
            self.queue.close()
            self.lost += 1 + sum(1 for _ in iter(self.queue.get, None))


class WebSocketSender(_Sender):
    """Serves every connected client one JSON text message per frame (json_text). `sent` and
    `dropped` count messages over all clients, those gone included."""

    def __init__(self, config: StreamConfig) -> None:
        self.label = f"WebSocket ws://{config.ws}"
        serving = _websockets_server()
        resolve(config.ws, socket.SOCK_STREAM, "--ws")
        super().__init__(config)
        self._clients: set[_Client] = set()
        self._gone = [0, 0]  # sent, dropped by clients gone
        self.refused = 0  # connections closed at once: MAX_WS_CONNECTIONS were open
        self._lock = threading.Condition()
        origins = None if ANY_ORIGIN in config.ws_allow_origins else [*LOCAL_ORIGINS, *config.ws_allow_origins]
        try:
            self._server = serving.serve(
                self._serve_client, config.ws.host, config.ws.port, compression=None, logger=_QUIET, origins=origins,
                max_size=WS_MAX_MESSAGE_BYTES, max_queue=WS_MAX_QUEUE, open_timeout=WS_OPEN_TIMEOUT_S,
            )
        except OSError as error:
            reason = error.strerror or one_line(error)
            raise PoseAppError(f"--ws {config.ws}: cannot serve WebSocket there: {reason}") from None
        self._cap_connections()
        self.port = self._server.socket.getsockname()[1]  # the one given, or the free one chosen for port 0
        self.label = f"WebSocket ws://{Endpoint(config.ws.host, self.port)}"
        self._serving = threading.Thread(target=self._server.serve_forever, name="pose-app WebSocket server",
                                         daemon=True)

    @property
    def sent(self) -> int:
        with self._lock:
            return self._gone[0] + sum(client.sent for client in self._clients)

    @property
    def dropped(self) -> int:
        with self._lock:
            return self.queue.dropped + self._gone[1] + sum(client.dropped for client in self._clients)

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def short_status(self) -> str:
        return super().short_status().replace("WebSocket", f"WebSocket {self.clients} client(s),", 1)

    def start(self) -> None:
        self._serving.start()
        super().start()

    def wait_for_clients(self, count: int) -> None:
        """Wait until `count` clients are connected."""
        with self._lock:
            self._lock.wait_for(lambda: len(self._clients) >= count)

    def _cap_connections(self) -> None:
        """At most MAX_WS_CONNECTIONS connections at once, handshakes in progress included: the
        server starts a thread per accepted socket before any handshake, so the cap wraps the
        function that thread runs, and one over it closes its socket and ends at once."""
        server, handle = self._server, self._server.handler
        room = threading.BoundedSemaphore(MAX_WS_CONNECTIONS)

        def capped(sock: socket.socket, address: Any) -> None:
            if not room.acquire(blocking=False):
                self.refused += 1
                try:
                    sock.close()
                finally:
                    with server.lock:
                        server.handler_threads.discard(threading.current_thread())
                return
            try:
                handle(sock, address)
            finally:
                room.release()

        server.handler = capped

    def _serve_client(self, connection: Any) -> None:
        """A client's handler thread (the server starts one per connection)."""
        # A small kernel buffer: a slow client gets its frames dropped here, not seconds late.
        connection.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        client = _Client(connection)
        with self._lock:
            self._clients.add(client)
            self._lock.notify_all()
        try:
            client.serve(self.latency)
        finally:
            with self._lock:
                self._clients.discard(client)
                self._gone[0] += client.sent
                self._gone[1] += client.dropped

    def _deliver(self, snapshot: PoseSnapshot) -> None:
        with self._lock:
            clients = list(self._clients)
        if not clients:
            return
        text = json_text(pose_message(snapshot, self.config.stream_angles))
        for client in clients:
            client.queue.put((text, snapshot.captured_at))

    def close(self) -> None:
        """Send what is queued to the clients that read, cut off those that do not, stop serving."""
        super().close()
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            client.queue.close()
        deadline = time.monotonic() + CLOSE_WAIT_S
        while self.clients and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            stuck = list(self._clients)
        for client in stuck:  # blocked sending to a client that does not read
            try:
                client.connection.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.shutdown()
        if self._serving.ident is not None:
            self._serving.join(CLOSE_WAIT_S)


class PoseStreams:
    """The senders of one StreamConfig, opened together (PoseAppError before anything is sent
    when an endpoint is malformed, unresolvable or its port in use) and fed together."""

    def __init__(self, senders: list[_Sender], config: StreamConfig) -> None:
        self.senders = senders
        self.config = config
        self._waited = config.ws_wait_clients <= 0

    @classmethod
    def open(cls, config: StreamConfig) -> PoseStreams:
        senders: list[_Sender] = []
        try:
            if config.osc is not None:
                senders.append(OscSender(config))
            if config.ws is not None:
                senders.append(WebSocketSender(config))
        except BaseException:
            for sender in senders:
                sender.close()
            raise
        for sender in senders:
            sender.start()
        return cls(senders, config)

    def describe(self) -> str:
        """'OSC to 127.0.0.1:9000 (bundle, x y in 0..1 of the frame), WebSocket on ws://127.0.0.1:8765'."""
        parts = []
        for sender in self.senders:
            if isinstance(sender, OscSender):
                units = "pixels" if self.config.osc_pixels else "0..1 of the frame"
                parts.append(f"OSC to {self.config.osc} ({self.config.osc_format}, x y in {units})")
            else:
                parts.append(sender.label.replace("WebSocket ", "WebSocket on "))
        return ", ".join(parts) + (", with angles" if self.config.stream_angles else "")

    @property
    def websocket(self) -> WebSocketSender | None:
        return next((sender for sender in self.senders if isinstance(sender, WebSocketSender)), None)

    def send(self, frame: Frame, poses: FramePoses, captured_at: float) -> None:
        """Hand one processed frame to every sender (returns at once; the first call waits for
        `ws_wait_clients` WebSocket clients)."""
        if not self._waited:
            self._waited = True
            if self.websocket is not None:
                self.websocket.wait_for_clients(self.config.ws_wait_clients)
        snapshot = PoseSnapshot.of(frame, poses, captured_at)
        for sender in self.senders:
            sender.offer(snapshot)

    @property
    def errors(self) -> list[str]:
        return [sender.error for sender in self.senders if sender.error]

    @property
    def dropped(self) -> int:
        return sum(sender.dropped for sender in self.senders)

    def status_lines(self) -> list[str]:
        return [sender.status() for sender in self.senders]

    def short_status(self) -> str:
        """The app's status-bar text: 'OSC 120 sent, 0 dropped, 12 ms · WebSocket 2 clients, ...'."""
        return " · ".join(sender.short_status() for sender in self.senders)

    def close(self) -> None:
        for sender in self.senders:
            sender.close()

    def __enter__(self) -> PoseStreams:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
