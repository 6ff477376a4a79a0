"""A small receiver of pose-app's live stream: prints each frame's people, from OSC or WebSocket.

    pip install "pose-app[stream]"
    pose-app process dance.mp4 --osc 127.0.0.1:9000         # in one terminal
    python examples/receive_poses.py --osc 9000             # in another

    pose-app process 0 --ws 127.0.0.1:8765
    python examples/receive_poses.py --ws ws://127.0.0.1:8765

Each line: frame, time, and per person its id, score and the nose in 0..1 of the frame (OSC) or
in pixels (WebSocket). The address scheme and units: docs/streaming.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict

MIN_SCORE = 0.3  # below this a keypoint is a guess
CONNECT_WAIT_S = 30.0


def print_frame(frame: int, time_s: float, people: dict[int, dict]) -> None:
    parts = [f"frame {frame} t={time_s:.3f}s {len(people)} people"]
    for person_id, person in sorted(people.items()):
        nose = person.get("nose")
        where = f"nose ({nose[0]:.3f}, {nose[1]:.3f})" if nose and nose[2] >= MIN_SCORE else "nose unseen"
        parts.append(f"id {person_id} score {person.get('score', 0.0):.2f} {where}")
    print(" | ".join(parts), flush=True)


def receive_osc(port: int, count: int | None) -> None:
    """OSC: a bundle is one frame (/pose/frame, then /pose/<id>/score and /pose/<id>/<keypoint>);
    with --osc-format array, one /poses message is."""
    from pythonosc import dispatcher, osc_server

    frame: dict = {}
    received = 0

    def handle(address: str, *args) -> None:
        parts = address.strip("/").split("/")  # pose, frame | pose, <id>, score | pose, <id>, <keypoint>
        if parts == ["pose", "frame"]:
            frame.update(frame=args[0], time_s=args[1], people=defaultdict(dict))
        elif parts == ["poses"]:  # frame, time, width, height, people, then 53 values per person
            people = {}
            for start in range(5, 5 + args[4] * 53, 53):
                people[args[start]] = {"score": args[start + 1], "nose": args[start + 2 : start + 5]}
            frame.update(frame=args[0], time_s=args[1], people=people)
        elif len(parts) == 3 and frame:
            frame["people"][int(parts[1])][parts[2]] = args[0] if parts[2] == "score" else args

    class OneFramePerDatagram(dispatcher.Dispatcher):
        def call_handlers_for_packet(self, data, client_address):
            nonlocal received
            result = super().call_handlers_for_packet(data, client_address)
            if frame:
                print_frame(frame["frame"], frame["time_s"], frame["people"])
                frame.clear()
                received += 1
                if count is not None and received >= count:
                    raise SystemExit(0)
            return result

    routes = OneFramePerDatagram()
    routes.set_default_handler(handle)
    server = osc_server.BlockingOSCUDPServer(("0.0.0.0", port), routes)
    print(f"listening for OSC on UDP port {port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def connect_when_up(url: str, **options):
    """A websockets connection to `url`, retrying for up to CONNECT_WAIT_S while pose-app starts."""
    from websockets.sync.client import connect

    deadline = time.monotonic() + CONNECT_WAIT_S
    while True:
        try:
            return connect(url, **options)
        except OSError as error:
            if time.monotonic() > deadline:
                raise SystemExit(f"cannot connect to {url}: {error}") from None
            time.sleep(0.2)


def stall_websocket(url: str) -> None:
    """Connect and never read (a frozen browser tab): what it costs pose-app is what `process`
    then prints (frames/s, and this client's messages dropped)."""
    # max_queue=1: the client library stops reading the socket once one message waits unread.
    with connect_when_up(url, max_queue=1):
        print(f"connected to {url}, not reading (Ctrl-C to stop)", file=sys.stderr, flush=True)
        while True:
            time.sleep(1.0)


def receive_websocket(url: str, count: int | None) -> None:
    with connect_when_up(url) as client:
        print(f"connected to {url}", file=sys.stderr, flush=True)
        for received, text in enumerate(client, start=1):
            message = json.loads(text)
            people = {
                person["id"]: {"score": person["score"],
                               "nose": [person["keypoints"]["nose"][key] for key in ("x", "y", "score")]}
                for person in message["people"]
            }
            print_frame(message["frame"], message["time_s"], people)
            if count is not None and received >= count:
                return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--osc", type=int, metavar="PORT", help="listen for OSC on this UDP port")
    source.add_argument("--ws", metavar="URL", help="connect to pose-app's WebSocket, e.g. ws://127.0.0.1:8765")
    parser.add_argument("--count", type=int, metavar="N", help="stop after N frames")
    parser.add_argument("--stall", action="store_true",
                        help="with --ws: connect and never read (to see what a stalled client costs pose-app)")
    args = parser.parse_args()
    try:
        if args.osc is not None:
            receive_osc(args.osc, args.count)
        elif args.stall:
            stall_websocket(args.ws)
        else:
            receive_websocket(args.ws, args.count)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
