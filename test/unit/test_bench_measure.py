"""The bench's measured commands (bench/measure.py through harness/pipe_process.py) and the engine phase's targets
that took over the old `push` phase's questions."""
from __future__ import annotations

import os
import sys

import pytest

from bench import measure
from bench.report import engine as engine_report
from bench.stats import summarize_runs


def test_a_measured_command_gives_its_time_cpu_and_peak_rss(tmp_path) -> None:
    out = measure.run([sys.executable, "-c", "b = bytearray(64 * 2**20); print('done')"], dict(os.environ), 60,
                      tmp_path / "run.log", {"me": os.getpid()})
    assert (tmp_path / "run.log").read_text().strip() == "done"
    assert out["seconds"] > 0 and out["cpu_s"] > 0 and out["peak_rss_mb"] > 64
    assert out["me_cpu_s"] is not None


def test_a_failed_or_hung_command_raises_with_its_output(tmp_path) -> None:
    with pytest.raises(RuntimeError, match="exited with 3: no luck"):
        measure.run([sys.executable, "-c", "print('no luck'); raise SystemExit(3)"], dict(os.environ), 60,
                    tmp_path / "a.log", {})
    with pytest.raises(RuntimeError, match="did not finish within 1s: started"):
        measure.run([sys.executable, "-u", "-c", "import time; print('started'); time.sleep(30)"], dict(os.environ),
                    1, tmp_path / "b.log", {})


def test_the_engine_phase_judges_the_daemons_push_through_the_pipe_and_both_re_pushes() -> None:
    runs = {"random/cold": {"docker_push": [{"seconds": 4.0}], "docker_engine": [{"seconds": 4.6}],
                            "native": [{"seconds": 2.0}]},
            "random/repush": {"native": [{"seconds": 0.5}], "docker_engine": [{"seconds": 3.5}]}}
    got = {t["figure"]: t for t in engine_report.targets({"summary": summarize_runs(runs, ("seconds",)), "runs": runs})}
    through_daemon = got["random cold: PUSH_ENGINE=docker / `docker push`"]
    assert (round(through_daemon["value"], 2), through_daemon["met"]) == (1.15, False)  # above 1.1x
    assert got["random re-push of an unchanged image, pipe, PUSH_ENGINE=native, s"]["met"] is True
    assert got["random re-push of an unchanged image, pipe, PUSH_ENGINE=docker, s"]["met"] is False  # over 3 s
