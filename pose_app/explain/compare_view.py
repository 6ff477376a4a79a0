"""The compare view of the feature-map dock ("compare", numpy/OpenCV, no Qt): two networks side by
side on the same frame. PoseNet (the full-frame pass) and MoveNet (run here on the person's crop,
explain/compare.py): the same keypoint's heatmap from each over the crop, their block strips
drawn to one scale (a block's height: its map's rows; its width: its channels), and the linear
CKA of every block of one with every block of the other over recent frames (explain/cka.py).
"""

from __future__ import annotations

import cv2
import numpy as np

from pose_app.core.poses import FramePoses
from pose_app.core.skeleton import KEYPOINT_NAMES
from pose_app.draw.featuremaps import colorize
from pose_app.errors import PoseAppError
from pose_app.explain.cka import GRID
from pose_app.explain.compare import (
    CompareSession,
    NetworkRun,
    PendingFrame,
    advance,
    fingerprint_of,
    full_frame_run,
    joins,
    second_engine,
)
from pose_app.explain.lab_view import gap_canvas, message_picture, outlined_label, value_map
from pose_app.explain.panel import PanelContext, PanelRequest, PanelView, PanelViewKind
from pose_app.inference.crops import CropTransform

GAP = 6
STRIP_HEIGHT = 56  # pixels of the tallest block of either strip
TITLE = 16  # pixels of a title line
LABEL_SCALE = 0.36
# A block's colour says its stride (how many input pixels per cell): fine blocks light, coarse dark.
STRIDE_BGR = {1: (230, 230, 230), 2: (200, 230, 250), 4: (120, 200, 250), 8: (60, 160, 240), 16: (40, 110, 210),
              32: (40, 60, 160)}
PEAK_MARK = (255, 255, 255)


def block_number(name: str) -> str:
    """'feature_12' -> '12': the strip's and the matrix's short label of a block."""
    return name.rsplit("_", 1)[-1]


def heat_square(image_bgr: np.ndarray, run: NetworkRun, crop: CropTransform, keypoint: int | None,
                side: int) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The crop's region of the frame (side x side) with `run`'s heatmap of the keypoint blended
    over it, and the heat's peak (x, y frame pixels, value), marked with a cross."""
    scale = crop.scale * side / crop.input_size[0]
    view = CropTransform(crop.centre, scale, (side, side))
    picture = cv2.warpAffine(image_bgr, view.affine(), (side, side), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    heat = np.clip(heat_over(run, keypoint, view, side), 0, 1)
    # Each pixel mixes towards the colour of its heat in proportion to the heat (as
    # draw.heatmap_overlay does): cold regions keep the picture, hot spots stand out.
    alpha = (0.8 * np.sqrt(heat))[..., None]  # the square root: a weak peak (0.3) still shows
    color = colorize(np.rint(heat * 255).astype(np.uint8))
    picture = np.rint(picture * (1 - alpha) + color * alpha).astype(np.uint8)
    peak = int(np.argmax(heat))
    py, px = divmod(peak, side)
    cv2.drawMarker(picture, (px, py), PEAK_MARK, cv2.MARKER_CROSS, 12, 2, cv2.LINE_AA)
    x, y = view.to_frame(np.array([[px, py]], np.float64))[0]
    return picture, (float(x), float(y), float(heat.flat[peak]))


def heat_over(run: NetworkRun, keypoint: int | None, view: CropTransform, side: int) -> np.ndarray:
    """`run`'s heatmap of the keypoint (max over keypoints for None) at every pixel of the
    side x side `view`: what run.heat_at reads there, bilinear and clamped to the map, by one
    warp (both ways from the view to the map's cells are affine)."""
    maps = run.heatmaps if keypoint is None else run.heatmaps[keypoint:keypoint + 1]
    heat = np.ascontiguousarray(maps.max(axis=0), np.float32)
    corners = np.array([[0.0, 0.0], [side, 0.0], [0.0, side]])
    cells = np.asarray(run.to_input(view.to_frame(corners)), np.float64) / run.output_stride
    to_cells = np.array([(cells[1] - cells[0]) / side, (cells[2] - cells[0]) / side, cells[0]]).T  # view pixel -> cell
    return cv2.warpAffine(heat, to_cells, (side, side), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def block_strip(run: NetworkRun, width: int, per_channel: float, per_row: float) -> np.ndarray:
    """One network's blocks left to right, each a box `per_row` pixels per row of its map tall
    and `per_channel` pixels per channel wide (the same scale for both networks), coloured by
    stride; each new stride labelled under its first block."""
    shapes = [values.shape for values in run.features.values()]
    strip = gap_canvas(2 * TITLE + STRIP_HEIGHT + 16, width)
    base = 2 * TITLE + STRIP_HEIGHT + 2
    x, last_stride, labelled_to = 4, None, -100
    for (channels, rows, _), name in zip(shapes, run.features):
        box_w, box_h = max(1, round(channels * per_channel)), max(2, round(rows * per_row))
        stride = run.strides[name]
        cv2.rectangle(strip, (x, base - box_h), (x + box_w - 1, base), STRIDE_BGR.get(stride, (200, 200, 200)), -1)
        if stride != last_stride and x >= labelled_to:  # labels that would overlap are left out
            outlined_label(strip, f"/{stride}", (x, base + 12), 0.3)
            labelled_to = x + 22
        last_stride = stride
        x += box_w + 1
    channels = sum(shape[0] for shape in shapes)
    outlined_label(strip, f"{run.title}, {run.where} {run.input_size[0]}x{run.input_size[1]}", (3, 12), LABEL_SCALE)
    outlined_label(strip, f"{len(shapes)} blocks, {channels} channels", (3, 12 + TITLE), LABEL_SCALE)
    return strip


def similarity_picture(matrix: np.ndarray, first: NetworkRun, second: NetworkRun, frames: int,
                       width: int) -> np.ndarray:
    """The CKA matrix: a row per block of `first`, a column per block of `second`, bright where
    they look alike (0..1, viridis); each row's best column outlined in white."""
    rows, columns = matrix.shape
    label_w = 22
    cell = max(3, (width - label_w - 4) // max(columns, 1))
    cell_h = min(cell, 12)
    height = TITLE * 2 + rows * cell_h + 14
    picture = gap_canvas(height, width)
    grid = value_map(np.clip(matrix, 0, 1), 1.0)
    grid = cv2.resize(grid, (columns * cell, rows * cell_h), interpolation=cv2.INTER_NEAREST)
    top = TITLE * 2
    picture[top:top + grid.shape[0], label_w:label_w + grid.shape[1]] = grid
    for row in range(rows):
        best = int(np.argmax(matrix[row]))
        x0, y0 = label_w + best * cell, top + row * cell_h
        cv2.rectangle(picture, (x0, y0), (x0 + cell - 1, y0 + cell_h - 1), (255, 255, 255), 1)
        if cell_h >= 10 or row % 2 == 0:
            outlined_label(picture, block_number(list(first.features)[row]),
                           (2, y0 + cell_h - 2), 0.3)
    every = max(1, -(-14 // cell))  # a column label every `every` columns, 14 px apart at least
    for column in range(0, columns, every):
        outlined_label(picture, block_number(list(second.features)[column]),
                       (label_w + column * cell, top + rows * cell_h + 11), 0.3)
    outlined_label(picture, f"CKA, {frames} frame{'s' if frames != 1 else ''}", (3, 12), LABEL_SCALE)
    outlined_label(picture, f"rows {first.title}, columns {second.title}", (3, 12 + TITLE), LABEL_SCALE)
    if width >= 170:  # the colour scale, right of the first title line
        legend = value_map(np.linspace(0, 1, 40)[None].repeat(8, 0), 1.0)
        picture[4:12, width - 54:width - 14] = legend
        outlined_label(picture, "0", (width - 64, 12), 0.3)
        outlined_label(picture, "1", (width - 11, 12), 0.3)
    return picture


class CompareView(PanelViewKind):
    """Two networks side by side: PoseNet on the full frame, MoveNet on the person's crop."""

    name = "compare"
    label = "Two networks side by side (PoseNet and MoveNet)"

    def features(self, request: PanelRequest) -> tuple[str, ...]:
        return request.blocks  # every block of the running network: each is a row of the matrix

    def controls(self, request: PanelRequest) -> frozenset[str]:
        return frozenset({"keypoint"})

    def layers(self, request: PanelRequest) -> set[str]:
        return {*request.blocks, "heatmaps"}

    def new_state(self) -> CompareSession:
        return CompareSession()

    def frame_needs(self, request: PanelRequest, state: CompareSession, frame_index: int | None,
                    image_bgr: np.ndarray) -> bool:
        # Only the frames that join the similarity run both networks; the others show those
        # runs, so that a playing video follows on crops in between (as with the dock closed).
        return state.needs_networks(frame_index, image_bgr)

    def compose(self, image_bgr, poses: FramePoses, request: PanelRequest, context: PanelContext) -> PanelView:
        width = max(request.picture_width(image_bgr), 2 * 64 + GAP)
        session = context.state_of(self)
        if context.engine is None:
            return PanelView(message_picture(width, "needs the running network"), "The compare view needs the running "
                             "network", self.name)
        try:
            other = second_engine(context.engine, context.crop_engine, session)
        except PoseAppError as error:
            return PanelView(message_picture(width, "cannot open the second network"), str(error), self.name)
        fingerprint = fingerprint_of(image_bgr)
        again = (context.frame_index, fingerprint) == session.shown  # paused, or settings changed
        session.count_draw(context.frame_index, fingerprint)
        blocks = request.blocks or tuple(poses.features)
        ran = poses.heatmaps is not None and poses.transform is not None and bool(blocks) and all(
            name in poses.features for name in blocks)
        kept = session.kept
        other_networks = kept is not None and (kept[0].model, kept[1].model) != (context.engine.info.name,
                                                                                  other.info.name)
        joined = ran and joins(session, context.frame_index, fingerprint)
        if ran and (joined or other_networks or (kept is None and session.pending is None)):
            advance(session, everything=True)  # the frame before, finished first
            if joined:
                session.last_frame = (context.frame_index, fingerprint, session.drawn)
            session.pending = PendingFrame(full_frame_run(context.engine, poses, blocks), image_bgr, poses, other,
                                           joined)
            # The first picture, a paused frame and other networks at once; while playing, the
            # frame's networks are read over the next frames drawn and the last pair shown meanwhile.
            advance(session, everything=kept is None or again or other_networks)
        elif session.pending is not None:
            advance(session, everything=again)
        if session.kept is None:
            return PanelView(message_picture(width, "waiting for a frame"), "The compare view waits for a "
                             "frame that runs both networks", self.name)
        drawn = session.drawn_view
        if drawn is not None and drawn[0] is session.kept and drawn[1] is request and drawn[2] == context.mirror:
            return session.drawn_view[3]  # the same picture: the window need not paint it again
        first, second, crop, shown = session.kept
        # Landscape, as the dock is: the heatmaps over the strips on the left, the matrix right.
        left = (width - GAP) // 2
        side = (left - GAP) // 2
        squares, peaks = [], []
        for run in (first, second):
            square, peak = heat_square(shown, run, crop, request.keypoint, side)
            if context.mirror:  # the learner sees the picture as the main view shows it
                square = cv2.flip(square, 1)
            outlined_label(square, f"{run.title} {peak[2]:.2f}", (3, 13), LABEL_SCALE)
            squares.append(square)
            peaks.append(peak)
        heat_row = gap_canvas(side, left)
        heat_row[:, :side], heat_row[:, side + GAP:2 * side + GAP] = squares
        shapes = [v.shape for run in (first, second) for v in run.features.values()]
        channels = max(sum(v.shape[0] for v in run.features.values()) for run in (first, second)) if shapes else 1
        blocks = max(len(first.features), len(second.features))
        per_channel = (left - 8 - blocks) / max(channels, 1)
        per_row = STRIP_HEIGHT / max((shape[1] for shape in shapes), default=1)
        strips = [session.picture(("strip", run.model, run.where, run.input_size, tuple(run.features), left,
                                   per_channel, per_row), lambda run=run: block_strip(run, left, per_channel, per_row))
                  for run in (first, second)]
        column = np.concatenate([heat_row, *strips])
        matrix = session.similarity.matrix()
        right = width - left - GAP
        frames = len(session.similarity)
        similarity = (session.picture(("matrix", session.added, frames, first.model, second.model, right),
                                      lambda: similarity_picture(matrix, first, second, frames, right))
                      if matrix.size else gap_canvas(1, right))
        picture = gap_canvas(max(len(column), len(similarity)), width)
        picture[:len(column), :left] = column
        picture[:len(similarity), left + GAP:] = similarity
        caption = self._caption(request, first, second, peaks, matrix, frames)
        view = PanelView(picture, caption, self.name)
        session.drawn_view = (session.kept, request, context.mirror, view)
        return view

    @staticmethod
    def _caption(request: PanelRequest, first: NetworkRun, second: NetworkRun, peaks, matrix: np.ndarray,
                 frames: int) -> str:
        keypoint = "every keypoint (max)" if request.keypoint is None else KEYPOINT_NAMES[request.keypoint]
        apart = float(np.hypot(peaks[0][0] - peaks[1][0], peaks[0][1] - peaks[1][1]))
        text = (f"{first.title} ({first.model}) on the {first.where} and {second.title} ({second.model}) on the "
                f"{second.where}, same frame. Left, top: each "
                f"one's {keypoint} heatmap over the crop (cross: its peak; the peaks are {apart:.0f} px apart). "
                f"Left, below: their blocks to one scale, a box per block as tall as its map's rows and as wide as its "
                f"channels (colour and /N: its stride, input pixels per cell). ")
        if not matrix.size:
            return text + "Right: the similarity of their blocks appears once the running network's blocks are computed."
        best_row, best_column = np.unravel_index(int(np.argmax(matrix)), matrix.shape)
        names_a, names_b = list(first.features), list(second.features)
        deepest = int(np.argmax(matrix[-1]))
        return text + (
            f"Right: linear CKA of every {first.title} block (rows) with every {second.title} block (columns), each "
            f"read on the same {GRID}x{GRID} points of the crop over the last {frames} frames: 1 = the two blocks tell "
            f"the points apart alike (up to a turn and scale of their channels), 0 = unrelated. Most alike: "
            f"{names_a[best_row]} and {names_b[best_column]} ({matrix[best_row, best_column]:.2f}); "
            f"{first.title}'s last block {names_a[-1]} is most like {names_b[deepest]} ({matrix[-1, deepest]:.2f}).")
