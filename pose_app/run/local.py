"""A `process` run on this machine: the inputs one after another in this process, on one engine."""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack

from pose_app.inference.pipeline import check_input_sizes, open_engine
from pose_app.io.formats import open_for_writing
from pose_app.io.stream import PoseStreams
from pose_app.run.plan import RunPlan
from pose_app.run.runner import (
    EXIT_INTERRUPTED,
    EXIT_SOME_INPUTS_FAILED,
    InputResult,
    continue_hint,
    print_summary,
    process_input,
    report_error,
    sigterm_as_interrupt,
)


def run_locally(run_plan: RunPlan) -> int:
    """The inputs one after another in this process, on one engine (and one set of streams)."""
    started = time.monotonic()
    # The streams open (their endpoints checked) before the model loads and any output file opens.
    stream = PoseStreams.open(run_plan.stream) if run_plan.stream.enabled else None
    try:
        code = _process_inputs(run_plan, stream, started)
    finally:
        if stream is not None:
            stream.close()  # sends what is still queued
    if stream is not None and report_stream(stream) and code == 0:
        return EXIT_SOME_INPUTS_FAILED
    return code


def report_stream(stream: PoseStreams) -> bool:
    """The closed streams' totals, one line each, and an error line for each that stopped (the
    files were written all the same); True when one did."""
    for line in stream.status_lines():
        print(f"pose-app process: {line}")
    for error in stream.errors:
        print(f"pose-app: error: {error}; the other outputs were written", file=sys.stderr)
    return bool(stream.errors)


def _process_inputs(run_plan: RunPlan, stream: PoseStreams | None, started: float) -> int:
    config = run_plan.config
    engine = open_engine(config)
    check_input_sizes(config, engine)  # before any output is opened
    print(
        f"pose-app process: preset {config.preset}, {engine.info.name} on {engine.provider_label}",
        file=sys.stderr,
    )
    if stream is not None:
        print(f"pose-app process: streaming {stream.describe()}", file=sys.stderr)
        for warning in run_plan.stream.warnings():
            print(f"pose-app: warning: {warning}", file=sys.stderr)
    results = [
        InputResult(spec, plan, skipped=skip) for spec, plan, skip in zip(run_plan.specs, run_plan.plans, run_plan.skip)
    ]
    with ExitStack() as shared, sigterm_as_interrupt():
        # A CSV path used by several inputs is opened once here and shared (one header line).
        shared_streams = {
            path: shared.enter_context(open_for_writing(path, run_plan.inputs)) for path in sorted(run_plan.shared_paths)
        }
        for result, plan in zip(results, run_plan.plans):
            if result.skipped:
                continue
            outputs = {kind: shared_streams.get(path, path) for kind, path in plan.items()}
            try:
                process_input(
                    result.spec, outputs, config, engine, run_plan.fill_gaps, result, height_m=run_plan.height_m,
                    stream=stream, paced=stream is not None and not run_plan.max_speed, inputs=run_plan.inputs,
                )
            except KeyboardInterrupt:
                where = "no frame" if result.last_frame is None else f"frame {result.last_frame}"
                print(
                    f"pose-app: interrupted in {result.spec} after {where}; the outputs hold every frame "
                    "up to there (whole CSV lines; the JSON is closed with \"complete\": false)"
                    + continue_hint(run_plan, result.spec),
                    file=sys.stderr,
                )
                print_summary(results[: results.index(result) + 1])
                return EXIT_INTERRUPTED
            if result.error:
                report_error(result)
    print_summary(results, time.monotonic() - started)
    return EXIT_SOME_INPUTS_FAILED if any(result.error for result in results) else 0
