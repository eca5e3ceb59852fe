"""The device check runs its CPU mode end to end (so it works when a GPU
session needs it)."""
import json

import pytest

from conftest import load_experiment_module


@pytest.mark.slow          # three subprocesses, ~45 s: outside CI's budget
def test_device_check_tiny_mode(tmp_path):
  dc = load_experiment_module("perf/device_check")
  steps = dc.main(["--tiny", "--out", str(tmp_path)])
  assert steps["tests"][0] == 0, (tmp_path / "tests.txt").read_text()[-2000:]
  assert steps["demo"][0] == 0, (tmp_path / "demo.txt").read_text()[-2000:]
  assert steps["bench"][0] == 0, (tmp_path / "bench.txt").read_text()[-2000:]
  assert steps["precision"][0] == 0, (tmp_path / "precision.txt").read_text(
      )[-2000:]
  env = json.loads((tmp_path / "env.json").read_text())
  assert env["backend"] and env["cpu"] and "jax" in env
  report = (tmp_path / "report.md").read_text()
  assert "| demo | observation" in report and "## Benchmark" in report
  assert "## Precision" in report and "| bfloat16 |" in report
  assert "Machine: " in report
