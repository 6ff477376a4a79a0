"""`pose-app process --ray`: the inputs of one run processed in parallel by Ray, on this
machine's cores or on a cluster (docs/large-batches.md).

Ray does the scheduling, the retries and the worker processes; this module only submits one Ray
task per input and collects the results:

- Each task runs `process.process_input`, the same per-input code path as a local run (same
  pipeline, recorder and files), with `atomic=True`: its files are written under temporary names
  and renamed when finished, so an attempt that dies (killed worker, lost node) leaves nothing
  under the outputs' names and Ray's retry (`max_retries`) writes them afresh.
- A worker process loads the model once (`worker_engine`, a per-process cache keyed by model,
  provider and threads) and keeps it for every input it is given.
- Several inputs into one CSV: each task writes its own part file beside it, and the driver
  appends the parts in input order as they become available, so the combined file is the one a
  local run writes, whatever order the workers finish in.
- Progress: workers add their frames to a small Ray actor (`ProgressBoard`) that the driver
  polls for one progress bar over the whole run; the board also counts attempts (retries) and
  model loads.
- Ctrl-C cancels the tasks still running or waiting; every finished output stays valid and the
  summary names the inputs that were not done.
- A local instance (`--ray` without an address) listens on the loopback address only
  (`loopback_only`): Ray's servers have no password.

Inputs and outputs are paths that every node reads and writes at the same place (a shared
filesystem); tasks run in the driver's working folder, so relative paths mean the same on every
node.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from pose_app.errors import PoseAppError, one_line, optional_module
from pose_app.inference.config import PipelineConfig
from pose_app.inference.engine import PoseEngine
from pose_app.inference.pipeline import check_input_sizes, open_engine
from pose_app.io.formats import open_for_writing
from pose_app.io.recording import temporary_paths
from pose_app.io.sources import is_camera_index
from pose_app.run.plan import RunPlan
from pose_app.run.runner import (
    EXIT_INTERRUPTED,
    EXIT_SOME_INPUTS_FAILED,
    InputResult,
    continue_hint,
    print_summary,
    process_input,
    progress_bar,
    report_error,
    sigterm_as_interrupt,
)

INSTALL_HINT = '--ray needs Ray, which is not installed: pip install "pose-app[ray]"'
# Ray retries a task whose worker died (killed, out of memory, node lost) this many times. An
# input that fails for a reason of its own (corrupt file) is not retried: its task succeeds and
# returns the error.
MAX_RETRIES = 3
# How often the driver polls for finished inputs and progress (seconds).
POLL_S = 0.25
# A worker sends its frame count to the board at most this often (seconds).
REPORT_INTERVAL_S = 0.5
# A cancelled task's worker is given this long to go before its temporary files are removed.
CANCEL_WAIT_S = 10.0
# What makes Ray take the loopback address for this node (loopback_only).
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def import_ray():
    """The ray module, or PoseAppError saying in one line how to install it (exit 2)."""
    return optional_module("ray", INSTALL_HINT)


# ---------------------------------------------------------------------------- in the workers


@functools.lru_cache(maxsize=2)
def worker_engine(model: str, provider: str, threads: int):
    """This process's PoseEngine for a model, provider and thread count: loaded on the first
    input a worker process is given, kept for the next ones."""
    return PoseEngine(model, provider=provider, threads=threads)


class _BoardProgress:
    """process_input's progress for a Ray worker: frame counts sent to the board in batches."""

    def __init__(self, board: Any):
        self._board = board
        self._pending = 0
        self._sent_at = time.monotonic()

    def __call__(self, label: str, total: int | None) -> _BoardProgress:
        return self

    def __enter__(self) -> _BoardProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def update(self, frames: int = 1) -> None:
        self._pending += frames
        if time.monotonic() - self._sent_at >= REPORT_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._board.add.remote(self._pending)
            self._pending = 0
        self._sent_at = time.monotonic()


def process_in_worker(
    index: int,
    spec: str,
    outputs: dict[str, Path],
    config: PipelineConfig,
    fill_gaps: int,
    threads: int,
    workdir: str,
    board: Any,
    height_m: float | None = None,
    inputs: frozenset = frozenset(),
) -> InputResult:
    """One input in a Ray worker (the body of its task): process_input with atomic outputs."""
    import ray

    # Waited for: an attempt is counted even when its worker dies a moment later (a retry).
    ray.get(board.started.remote(index, os.getpid()))
    result = InputResult(spec, outputs)
    try:
        if os.getcwd() != workdir:
            os.chdir(workdir)
    except OSError:
        result.error = (
            f"the driver's working folder {workdir} is not on this node: inputs and outputs must be "
            "on a filesystem every node mounts at the same path"
        )
        return result
    loads = worker_engine.cache_info().misses
    try:
        engine = worker_engine(config.model, config.provider, threads)
    except PoseAppError as error:
        result.error = str(error)
        return result
    if worker_engine.cache_info().misses > loads:
        board.loaded.remote(os.getpid())
    process_input(spec, outputs, config, engine, fill_gaps, result, progress=_BoardProgress(board), atomic=True,
                  height_m=height_m, inputs=inputs)
    return result


class ProgressBoard:
    """A Ray actor the workers report to and the driver polls: frames processed (summed over
    workers), attempts per input (more than one: Ray retried it) and model loads."""

    def __init__(self) -> None:
        self._frames = 0
        self._attempts: dict[int, int] = {}
        self._pids: dict[int, int] = {}
        self._loads: list[int] = []

    def add(self, frames: int) -> None:
        self._frames += frames

    def started(self, index: int, pid: int) -> None:
        self._attempts[index] = self._attempts.get(index, 0) + 1
        self._pids[index] = pid

    def loaded(self, pid: int) -> None:
        self._loads.append(pid)

    def poll(self) -> tuple[int, dict[int, int], dict[int, int], list[int]]:
        """(frames since the last poll, attempts per input, worker pid per input, pids that loaded the model)."""
        frames, self._frames = self._frames, 0
        return frames, dict(self._attempts), dict(self._pids), list(self._loads)


# ---------------------------------------------------------------------------- the driver


def part_path(path: Path, index: int) -> Path:
    """Where input `index` writes its part of the combined CSV `path`."""
    return path.with_name(f".{path.stem}.part-{index:06d}{path.suffix}")


def append_part(part: Path, combined: IO[str]) -> None:
    """Append a finished part to the combined CSV (its header line only into an empty file, as
    the local run's recorder does) and delete it."""
    position = combined.tell()
    try:
        with open(part, encoding="utf-8", newline="") as source:
            header = source.readline()
            if position == 0:
                combined.write(header)
            shutil.copyfileobj(source, combined)
        combined.flush()
    except BaseException:  # Ctrl-C or a full disk: no half part in the combined file
        combined.seek(position)
        combined.truncate()
        raise
    part.unlink()


def _check_inputs(run_plan: RunPlan) -> None:
    cameras = [spec for spec in run_plan.specs if is_camera_index(spec)]
    if cameras:
        raise PoseAppError(f"camera {cameras[0]} cannot be read by Ray workers: process cameras without --ray")


def _check_model(config: PipelineConfig, local: bool) -> None:
    """PoseAppError before anything runs when the model cannot serve this config. On a local
    instance the engine is loaded as the workers will (provider included); a cluster's driver may
    lack the workers' accelerators, so there only the model and input sizes are checked (on the CPU)."""
    engine = open_engine(config) if local else PoseEngine(config.model, provider="cpu", threads=1)
    check_input_sizes(config, engine)


@contextlib.contextmanager
def loopback_only(ray: Any) -> Iterator[None]:
    """While a local Ray instance is started: its servers listen on the loopback address only.

    On Linux, Ray's processes listen on the address it takes for this node, the one facing the
    network, without authentication: anyone who can reach the machine could join the instance and
    run code as the user. Ray takes the loopback address instead where it is told that this
    machine is no cluster node (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, its default on macOS and
    Windows): the environment variable reaches Ray's own processes, the constant this process's
    Ray read when it was imported."""
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    saved_env = os.environ.get(LOCAL_ONLY_ENV)
    saved_constant = getattr(constants, "ENABLE_RAY_CLUSTER", None)
    os.environ[LOCAL_ONLY_ENV] = "0"
    if saved_constant is not None:
        constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if saved_env is None:
            os.environ.pop(LOCAL_ONLY_ENV, None)
        else:
            os.environ[LOCAL_ONLY_ENV] = saved_env
        if saved_constant is not None:
            constants.ENABLE_RAY_CLUSTER = saved_constant


def _start_ray(ray: Any, address: str) -> tuple[bool, float]:
    """Connect to Ray (a local instance with this machine's cores, listening on the loopback
    address only, or a cluster); an instance this process already started is used as it is.
    Returns (started here, seconds it took)."""
    if ray.is_initialized():
        return False, 0.0
    started = time.monotonic()
    options: dict[str, Any] = {"logging_level": logging.ERROR}
    try:
        if address == "local":
            with loopback_only(ray):
                ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise PoseAppError(f"cannot start or join Ray at {address}: {one_line(error)}") from None
    return True, time.monotonic() - started


def _cpus_per_input(ray: Any, config: PipelineConfig, local: bool, workers: int | None) -> int:
    """CPUs each input's task reserves, and the onnxruntime threads it runs: --threads when given;
    on a local instance with --workers N, this machine's cores shared among the N; else 1."""
    cpus = int(ray.cluster_resources().get("CPU", 1))
    per_input = config.threads or (max(1, cpus // workers) if local and workers else 1)
    largest_node = max((int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node.get("Alive")), default=cpus)
    if per_input > largest_node:
        raise PoseAppError(f"--threads {per_input}: no Ray node has that many CPUs (the largest has {largest_node})")
    return per_input


def run_with_ray(run_plan: RunPlan, address: str, workers: int | None) -> int:
    """`pose-app process --ray`: one Ray task per input (see the module's docstring)."""
    ray = import_ray()
    config = run_plan.config
    _check_inputs(run_plan)
    local = address == "local"
    _check_model(config, local)
    wall_start = time.monotonic()
    started_here, ray_seconds = _start_ray(ray, address)
    try:
        return _run(ray, run_plan, address, workers, wall_start, ray_seconds)
    finally:
        if started_here:
            ray.shutdown()


def _run(ray: Any, run_plan: RunPlan, address: str, workers: int | None, wall_start: float, ray_seconds: float) -> int:
    config = run_plan.config
    local = address == "local"
    per_input = _cpus_per_input(ray, config, local, workers)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    at_once = min(workers or cpus // per_input, max(1, cpus // per_input))
    print(
        f"pose-app process: preset {config.preset}, {config.model} on Ray "
        f"({'local' if local else address}, {cpus} CPUs; {at_once} input(s) at a time, {per_input} CPU(s) each; "
        f"Ray ready in {ray_seconds:.1f} s)",
        file=sys.stderr,
    )
    results = [
        InputResult(spec, plan, skipped=skip) for spec, plan, skip in zip(run_plan.specs, run_plan.plans, run_plan.skip)
    ]
    # What each task writes: its own files, and a part file for each combined CSV.
    task_outputs = [
        {kind: part_path(path, index) if path in run_plan.shared_paths else path for kind, path in plan.items()}
        for index, plan in enumerate(run_plan.plans)
    ]
    board = ray.remote(num_cpus=0)(ProgressBoard).remote()
    task = ray.remote(num_cpus=per_input, max_retries=MAX_RETRIES)(process_in_worker)
    workdir = os.getcwd()
    waiting = deque(index for index, result in enumerate(results) if not result.skipped)
    to_do = len(waiting)
    running: dict[Any, int] = {}
    settled = [result.skipped for result in results]
    loads: list[int] = []
    appended = 0  # inputs whose parts are in the combined CSVs, in input order

    with ExitStack() as stack, sigterm_as_interrupt():
        combined = {
            path: stack.enter_context(open_for_writing(path, run_plan.inputs)) for path in sorted(run_plan.shared_paths)
        }
        for path in combined:
            for stale in path.parent.glob(f".{path.stem}.part-*{path.suffix}"):
                stale.unlink(missing_ok=True)

        def append_settled(in_order: bool = True) -> int:
            """Append the parts of settled inputs to the combined CSVs: in input order up to the
            first input not settled, or (after Ctrl-C) every settled one, still in input order."""
            position = appended
            for index in range(appended, len(results)):
                if not settled[index]:
                    if in_order:
                        break
                    continue
                for kind, path in run_plan.plans[index].items():
                    part = task_outputs[index][kind]
                    if path in combined and part.exists():
                        append_part(part, combined[path])
                position = index + 1
            return position

        # One bar over the whole run: frames of every worker (frames/s summed), inputs done.
        bar = stack.enter_context(progress_bar("pose-app", None))
        done = failed = 0

        def show() -> None:
            bar.set_postfix_str(f"inputs {done}/{to_do} done, {failed} failed", refresh=False)

        try:
            while waiting or running:
                while waiting and (workers is None or len(running) < workers):
                    index = waiting.popleft()
                    ref = task.options(name=f"pose-app:{index}").remote(
                        index, results[index].spec, task_outputs[index], config, run_plan.fill_gaps,
                        per_input, workdir, board, run_plan.height_m, run_plan.inputs,
                    )
                    running[ref] = index
                ready, _ = ray.wait(list(running), num_returns=len(running), timeout=POLL_S)
                for ref in ready:
                    index = running.pop(ref)
                    results[index] = _collect(ray, ref, results[index])
                    settled[index] = True
                    done += 1
                    if results[index].error:
                        failed += 1
                        bar.clear()
                        report_error(results[index])
                appended = append_settled()
                frames, attempts, _, loads = ray.get(board.poll.remote())
                for index, count in attempts.items():
                    results[index].attempts = count
                bar.update(frames)
                show()
        except KeyboardInterrupt:
            for ref in running:
                ray.cancel(ref, force=True)
            ray.wait(list(running), num_returns=len(running), timeout=CANCEL_WAIT_S)
            for index, result in enumerate(results):
                result.cancelled = not settled[index]
            append_settled(in_order=False)
            _remove_leftovers(run_plan, task_outputs)
            bar.close()
            not_done = [result.spec for result in results if result.cancelled]
            print(
                f"pose-app: interrupted; {len(not_done)} input(s) not done: {', '.join(not_done)}. Every "
                "finished input's outputs are complete; nothing of the others was kept"
                + continue_hint(run_plan, "those not done"),
                file=sys.stderr,
            )
            print_summary(results, time.monotonic() - wall_start)
            return EXIT_INTERRUPTED
        _, attempts, _, loads = ray.get(board.poll.remote())
        for index, count in attempts.items():
            results[index].attempts = count
    _remove_leftovers(run_plan, task_outputs)
    print_summary(results, time.monotonic() - wall_start)
    print(
        f"pose-app process: Ray ready in {ray_seconds:.1f} s; the model was loaded by {len(loads)} worker process(es)"
    )
    return EXIT_SOME_INPUTS_FAILED if any(result.error for result in results) else 0


def _collect(ray: Any, ref: Any, pending: InputResult) -> InputResult:
    """A finished task's InputResult, with the run's output paths; a task Ray gave up on (its
    worker died on every attempt, or an unexpected error) as a failed input."""
    try:
        result = ray.get(ref)
    except ray.exceptions.RayError as error:
        result = InputResult(pending.spec, pending.outputs)
        cause = getattr(error, "cause", None) or error
        result.error = f"{type(cause).__name__}: {one_line(cause)}"[:500]
    result.outputs = pending.outputs
    result.attempts = max(result.attempts, pending.attempts)
    return result


def _remove_leftovers(run_plan: RunPlan, task_outputs: list[dict[str, Path]]) -> None:
    """Delete what dead or cancelled attempts left: temporary files, unappended parts."""
    for index, plan in enumerate(run_plan.plans):
        for kind, path in task_outputs[index].items():
            for leftover in temporary_paths(path):
                leftover.unlink(missing_ok=True)
            if path != plan[kind]:
                path.unlink(missing_ok=True)
