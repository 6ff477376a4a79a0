"""The app's settings in sections (gui/setting_sections.py): the pipeline section is built from
PipelineConfig, so every pipeline setting (a new one too) reaches the app and its settings file;
files written before the sections still load; the breaks view's choices and the pipeline's
orientation and video-crop controls are settings like the others."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap

import pytest
from support import REPO, wait_for_result

pytest.importorskip("PySide6")

from pose_app.cli import main as cli
from pose_app.cli.app import settings_with_options
from pose_app.explain.breaks import BreaksRequest
from pose_app.gui.setting_sections import NOT_IN_APP, PIPELINE_SETTINGS, SECTION_OF
from pose_app.gui.settings import (
    AppSettings,
    file_store,
    load_settings_file,
    read_settings,
    save_settings_file,
)
from pose_app.inference.config import SETTING_NAMES, PipelineConfig


def other_value(name: str, value):
    """A valid value of the setting `name` other than `value`."""
    special = {"preset": "fast", "provider": "cpu", "model": "posenet-050", "crop_model": "posenet-075",
               "video_crop_model": "movenet-thunder"}
    if name in special:
        return special[name]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return round(value / 2 + 0.125, 3)
    raise AssertionError(f"{name}: no test value for a {type(value).__name__}")


def test_every_pipeline_setting_is_in_the_app_or_left_out_on_purpose():
    """No intersection of hand-written lists: each setting of PipelineConfig is either stored by
    the app or named in NOT_IN_APP, and stored ones are plain values QSettings can keep."""
    assert set(PIPELINE_SETTINGS) | NOT_IN_APP == set(SETTING_NAMES) | {"preset"}
    defaults = PipelineConfig().settings()
    for name in PIPELINE_SETTINGS:
        assert isinstance(defaults[name], (bool, int, float, str)), name
        assert SECTION_OF[name] == "pipeline"


def test_every_stored_pipeline_setting_is_named_as_its_command_line_option():
    """One name per setting: the app stores each under the destination of `pose-app process`'s option."""
    destinations = vars(cli.build_parser().parse_args(["process", "clip.mp4"]))
    assert [name for name in PIPELINE_SETTINGS if name not in destinations] == []


def test_every_pipeline_setting_round_trips_through_a_settings_file(tmp_path):
    defaults = AppSettings().values()
    changed = {name: other_value(name, defaults[name]) for name in PIPELINE_SETTINGS}
    settings = AppSettings(**changed)
    assert settings.pipeline_config() == PipelineConfig.from_settings(changed)
    path = tmp_path / "all.ini"
    save_settings_file(path, settings)
    loaded = load_settings_file(path)
    assert loaded == settings
    assert {name: loaded.values()[name] for name in PIPELINE_SETTINGS} == pytest.approx(changed)


def test_a_new_pipeline_config_field_reaches_the_app_settings_and_its_file(tmp_path):
    """A field added to PipelineConfig (here by a subclass put in its place before the app's
    settings are imported) is an app setting, stored and read back, with no edit in gui/."""
    script = textwrap.dedent(f"""
        import dataclasses
        import pose_app.inference.config as config

        @dataclasses.dataclass(frozen=True)
        class WithNewSetting(config.PipelineConfig):
            new_setting: int = 3

        config.PipelineConfig = WithNewSetting
        from pose_app.gui.settings import AppSettings, PIPELINE_SETTINGS, load_settings_file, save_settings_file

        assert "new_setting" in PIPELINE_SETTINGS
        assert AppSettings().new_setting == 3
        save_settings_file({str(tmp_path / "new.ini")!r}, AppSettings(new_setting=7))
        loaded = load_settings_file({str(tmp_path / "new.ini")!r})
        assert loaded.new_setting == 7 and loaded.pipeline_config().new_setting == 7
        print("ok")
    """)
    environ = dict(os.environ, PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environ, timeout=120,
                          check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert "pipeline\\new_setting=7" in (tmp_path / "new.ini").read_text()


def test_a_settings_file_of_the_flat_version_loads_into_the_sections(tmp_path):
    path = tmp_path / "flat.ini"
    path.write_text("[pose-app]\npreset=fast\nresolution=353\nmirror=true\nloop=false\nrecord_video=true\n"
                    "osc_port=9100\nchannel_count=5\n")
    settings = read_settings(file_store(path))
    assert settings.pipeline.resolution == 353 and settings.pipeline.preset == "fast"
    # A pipeline setting the flat file did not store takes its preset's value, as it did then.
    assert settings.pipeline.crop_model == PipelineConfig.from_preset("fast").crop_model
    assert settings.view.mirror_view and not settings.source.loop and settings.recording.record_video
    assert (settings.stream.osc_port, settings.lab.channel_count) == (9100, 5)
    save_settings_file(path, settings)  # written again: in sections, the flat keys gone
    text = path.read_text()
    assert "pipeline\\resolution=353" in text and "\nresolution=" not in text and "\nmirror=" not in text
    assert read_settings(file_store(path)) == settings


def test_a_setting_is_reached_by_its_one_name_through_its_section():
    settings = dataclasses.replace(AppSettings(), resolution=257, mirror_view=True, osc_port=9001)
    assert (settings.pipeline.resolution, settings.view.mirror_view, settings.stream.osc_port) == (257, True, 9001)
    assert settings.resolution == 257 and settings.max_poses == settings.pipeline.decode.max_poses
    with pytest.raises(TypeError, match="no setting"):
        AppSettings(no_such_setting=1)


def test_the_breaks_choices_survive_a_save_and_load(tmp_path):
    request = BreaksRequest("occlude", 40.0, "face", False, "legs")
    path = tmp_path / "breaks.ini"
    save_settings_file(path, AppSettings().with_breaks(request))
    assert load_settings_file(path).breaks_request() == request


def test_the_window_keeps_the_breaks_choices_between_runs(make_window, qtbot, tmp_path):
    window = make_window(panel_visible=True, panel_view="breaks", resolution=257)
    controls = window.panel.breaks
    controls.kind.setCurrentIndex(controls.kind.findData("blur"))
    controls.set_amount(2.0)
    controls.mean_of.setCurrentIndex(controls.mean_of.findData("arms"))
    chosen = controls.request()
    assert window.settings.breaks_request() == chosen
    window.close()
    stored = read_settings(file_store(tmp_path / "settings.ini"))
    assert stored.breaks_request() == chosen == BreaksRequest("blur", 2.0, "image centre", False, "arms")
    again = make_window(**stored.values())
    assert again.panel.breaks.request() == chosen and again.panel.breaks.value.text() == "sigma 2.0"


def test_the_orientation_and_video_crop_controls_set_the_pipeline(make_window, qtbot, walk_clip, tmp_path):
    args = cli.build_parser().parse_args(["--no-any-orientation", "--video-crop-model", "movenet-thunder"])
    started = settings_with_options(AppSettings(), args)  # the command line's names are the settings'
    window = make_window(**dataclasses.replace(started, output_dir=str(tmp_path)).values())
    controls = window.controls
    assert not controls.any_orientation.isChecked()
    assert controls.video_crop_model.currentData() == "movenet-thunder"
    controls.any_orientation.setChecked(True)
    controls.video_crop_model.setCurrentIndex(controls.video_crop_model.findData("movenet-lightning"))
    config = window.settings.pipeline_config()
    assert config.any_orientation and config.video_crop_model == "movenet-lightning"
    window.open_source(str(walk_clip))
    wait_for_result(qtbot, window)
    qtbot.waitUntil(lambda: window.inference.pipeline.config == config)  # the running pipeline is built from them
    running = window.inference.pipeline.config
    assert running.any_orientation and running.video_crop_model == "movenet-lightning"
    # Fixed while recording, as the other pipeline controls.
    window.toggle_recording()
    assert not controls.any_orientation.isEnabled() and not controls.video_crop_model.isEnabled()
    window.stop_recording()
