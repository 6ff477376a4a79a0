"""PipelineConfig: presets, overrides, one name per setting, and the header of what ran."""

import json

import pytest

from pose_app.cli import main as cli
from pose_app.errors import PoseAppError
from pose_app.inference.config import DEFAULT_PRESET, PRESET_DECIDES, PRESETS, SETTING_NAMES, PipelineConfig


def test_the_default_config_is_the_default_preset():
    assert PipelineConfig() == PipelineConfig.from_preset(DEFAULT_PRESET)
    assert PipelineConfig.from_preset("accurate").model == "posenet-075-s8"
    with pytest.raises(PoseAppError, match="unknown preset 'best'"):
        PipelineConfig.from_preset("best")


def test_options_override_the_preset_and_survive_a_change_of_preset():
    config = PipelineConfig.from_preset("accurate", resolution=641, min_pose_score=0.1, threads=2)
    assert (config.resolution, config.decode.min_pose_score, config.crop_flip) == (641, 0.1, True)
    fast = config.with_preset("fast")
    # What the user set stays; what the presets decide follows the new preset.
    assert (fast.resolution, fast.decode.min_pose_score, fast.threads) == (641, 0.1, 2)
    assert (fast.model, fast.crop_resolution, fast.crop_flip) == (
        PipelineConfig.from_preset("fast").model, PRESETS["fast"]["crop_resolution"], False)
    # A config made from stored settings (the GUI's) marks nothing as explicit: a new preset
    # takes over every setting it decides.
    stored = PipelineConfig.from_settings(config.settings())
    assert stored == config and stored.with_preset("fast").resolution == PRESETS["fast"]["resolution"]


def test_every_setting_has_one_name_in_config_cli_and_header(walk_clip, tmp_path):
    config = PipelineConfig()
    assert set(config.settings()) == set(SETTING_NAMES) | {"preset"}
    assert PRESET_DECIDES <= set(SETTING_NAMES)
    # Every setting the network options set is an argparse destination of the same name.
    parser = cli.build_parser()
    process = parser._subparsers._group_actions[0].choices["process"]
    destinations = {action.dest for action in process._actions}
    assert set(SETTING_NAMES) <= destinations
    out = tmp_path / "walk.json"
    assert cli.main(["process", str(walk_clip), "--json", str(out), "--end", "0.2", "--preset", "fast",
                     "--min-pose-score", "0.3", "--resolution", "300"]) == 0
    header = json.loads(out.read_text())["header"]
    expected = PipelineConfig.from_preset("fast", min_pose_score=0.3, resolution=300, end_s=0.2).settings()
    # The header names every setting as the config does; where the config asks and something
    # else runs, the header says what ran: the snapped resolution (300 -> 305 = 19 x 16 + 1),
    # the provider `auto` picked; and the crop size the crops ran at.
    ran = {"resolution", "provider", "crop_model"}
    assert {name: header[name] for name in expected if name not in ran} == {
        name: value for name, value in expected.items() if name not in ran}
    assert header["resolution"] == 305 and header["provider"] == "cpu" and expected["provider"] == "auto"
    # A video's crops run the video crop model, at its own input size.
    assert header["crop_input_size"] == [192, 192]
    assert expected["crop_model"] == "" and header["model"] == "posenet-075-int8"
    assert header["crop_model"] == expected["video_crop_model"] == "movenet-lightning"
    assert header["preset"] == "fast" and header["mode"] == "tracked-crops"


def test_help_shows_real_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["process", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default None" not in text
    assert "default from --preset: fast 257, balanced 513, accurate 513" in text
    assert "(default balanced)" in text


def test_bad_sizes_are_refused_before_anything_runs(walk_clip, tmp_path, capsys):
    out = tmp_path / "x.csv"
    assert cli.main(["process", str(walk_clip), "--csv", str(out), "--crop-resolution", "9"]) == 2
    assert "resolution 9 is too small" in capsys.readouterr().err and not out.exists()
