"""Every reader of user files, fed malformed rows, values and JSON by hypothesis: each answers
with its result or a PoseAppError (one line), never another exception. The readers: the keypoint,
angles and repetitions CSVs (angles, reps, plot), COCO ground truth (eval) and stored settings."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pose_app.analysis.evaluate import load_ground_truth
from pose_app.core.angles import ANGLE_NAMES
from pose_app.core.skeleton import KEYPOINT_NAMES
from pose_app.errors import PoseAppError
from pose_app.io.csv_tables import read_angle_csv, read_keypoint_csv
from pose_app.io.formats import ANGLE_CSV_COLUMNS, LONG_CSV_COLUMNS
from pose_app.io.reps_csv import REPS_CSV_COLUMNS, read_reps_csv

# Values a hand-edited or broken file holds: numbers of every kind and size, words, nothing.
NUMBER_TEXTS = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["inf", "-inf", "nan", "1e400", "-1e400", "", " ", "0x10", "1_000", "١٢", "1e-400", "9" * 400]),
)
FIELD_TEXTS = st.one_of(NUMBER_TEXTS, st.text(max_size=12), st.sampled_from([*KEYPOINT_NAMES, *ANGLE_NAMES]))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def rows(columns: tuple[str, ...], good: dict[str, st.SearchStrategy]):
    """Rows of `columns`, each field either a plausible value or anything, sometimes a field short or long."""
    field = {name: st.one_of(good.get(name, FIELD_TEXTS), FIELD_TEXTS) for name in columns}
    row = st.fixed_dictionaries(field).map(lambda values: [values[name] for name in columns])
    ragged = st.tuples(row, st.integers(-2, 2)).map(lambda pair: pair[0][: len(pair[0]) + pair[1]] if pair[1] < 0
                                                      else pair[0] + ["x"] * pair[1])
    return st.lists(st.one_of(row, ragged), max_size=40)


def csv_text(columns: tuple[str, ...], lines: list[list[str]]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    writer.writerows(lines)
    return buffer.getvalue()


def answers_in_one_line(read, *args) -> None:
    try:
        read(*args)
    except PoseAppError as error:
        assert "\n" not in str(error) and str(error)


KEYPOINT_FIELDS = {
    "frame": st.integers(0, 10).map(str), "person_id": st.integers(0, 3).map(str),
    "keypoint": st.sampled_from(KEYPOINT_NAMES), "score": st.floats(0, 1).map(repr),
    "x": st.floats(-10, 700).map(repr), "y": st.floats(-10, 500).map(repr), "time_s": st.floats(0, 5).map(repr),
}


@SETTINGS
@given(lines=rows(LONG_CSV_COLUMNS, KEYPOINT_FIELDS))
def test_keypoint_csv_reader(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("keypoints") / "k.csv"
    path.write_text(csv_text(LONG_CSV_COLUMNS, lines), encoding="utf-8")
    answers_in_one_line(read_keypoint_csv, path)


@SETTINGS
@given(lines=rows(ANGLE_CSV_COLUMNS, {**KEYPOINT_FIELDS, "angle": st.sampled_from(ANGLE_NAMES),
                                      "degrees": st.floats(-180, 180).map(repr), "confidence": st.floats(0, 1).map(repr)}))
def test_angle_csv_reader(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("angles") / "a.csv"
    path.write_text(csv_text(ANGLE_CSV_COLUMNS, lines), encoding="utf-8")
    answers_in_one_line(read_angle_csv, path)


@SETTINGS
@given(lines=rows(REPS_CSV_COLUMNS, {"person_id": st.integers(0, 3).map(str), "rep": st.integers(1, 9).map(str)}))
def test_repetitions_csv_reader(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("reps") / "r.csv"
    path.write_text(csv_text(REPS_CSV_COLUMNS, lines), encoding="utf-8")
    answers_in_one_line(read_reps_csv, path)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_csv_readers_on_any_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "b.csv"
    path.write_bytes(",".join(LONG_CSV_COLUMNS).encode() + b"\n" + data)
    for read in (read_keypoint_csv, read_angle_csv, read_reps_csv):
        answers_in_one_line(read, path)


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=8)),
    lambda children: st.one_of(st.lists(children, max_size=6), st.dictionaries(st.text(max_size=8), children, max_size=6)),
    max_leaves=30,
)
ANNOTATION = st.fixed_dictionaries({
    "id": st.one_of(st.integers(0, 5), JSON_VALUES), "image_id": st.one_of(st.integers(0, 5), JSON_VALUES),
    "category_id": st.one_of(st.just(1), JSON_VALUES),
    "bbox": st.one_of(st.lists(st.floats(0, 100), min_size=4, max_size=4), JSON_VALUES),
    "keypoints": st.one_of(st.lists(st.floats(0, 100), min_size=51, max_size=51), JSON_VALUES),
})
GROUND_TRUTH = st.fixed_dictionaries({
    "images": st.one_of(st.lists(st.fixed_dictionaries({"id": st.one_of(st.integers(0, 5), JSON_VALUES),
                                                        "file_name": st.one_of(st.text(max_size=8), JSON_VALUES)}),
                                 max_size=4), JSON_VALUES),
    "annotations": st.one_of(st.lists(ANNOTATION, max_size=4), JSON_VALUES),
    "categories": st.one_of(st.just([{"id": 1, "name": "person"}]), JSON_VALUES),
})


@SETTINGS
@given(document=st.one_of(GROUND_TRUTH, JSON_VALUES))
def test_ground_truth_reader(tmp_path_factory, document):
    path = tmp_path_factory.mktemp("gt") / "gt.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    answers_in_one_line(load_ground_truth, path)


@SETTINGS
@given(values=st.dictionaries(st.sampled_from(["preset", "resolution", "model", "min_pose_score", "mirror_view",
                                               "osc_port", "panel_view", "threads", "smooth_beta", "output_dir"]),
                              st.one_of(FIELD_TEXTS, st.text(max_size=20)), max_size=10))
def test_stored_settings_reader(tmp_path_factory, values):
    """Any stored values: the app's settings come back valid (the pipeline config builds), with at
    most one warning line."""
    pytest.importorskip("PySide6")
    from pose_app.gui.settings import SETTINGS_GROUP, file_store, read_settings

    path = tmp_path_factory.mktemp("settings") / "s.ini"
    store = file_store(path)
    store.beginGroup(SETTINGS_GROUP)
    for name, value in values.items():
        store.setValue(name, value)
    store.endGroup()
    store.sync()
    del store
    warnings: list[str] = []
    stored = read_settings(file_store(path), warnings)
    stored.pipeline_config()
    assert len(warnings) <= 1 and all("\n" not in warning for warning in warnings)
