"""One solve across processes (jax.distributed): two local CPU processes with
two simulated devices each, gloo collectives (tests/distributed_worker.py)."""
import os
import pathlib
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from blindinv_jax import checkpoint, distributed, launch

WORKER = pathlib.Path(__file__).parent / "distributed_worker.py"
ROOT = pathlib.Path(__file__).parent.parent


def _env(**extra):
  env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu",
         **extra}
  env.pop("XLA_FLAGS", None)
  return env


def _start(port, mode, out, **env):
  return [subprocess.Popen([sys.executable, str(WORKER), str(port), str(i),
                            str(out), mode], env=_env(**env),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True) for i in range(2)]


def _finish(procs, timeout=300):
  outs = [p.communicate(timeout=timeout)[0] for p in procs]
  for p, o in zip(procs, outs):
    assert p.returncode == 0, o[-3000:]
  return outs


def test_two_processes_give_the_one_process_solve(tmp_path):
  """Full batch, minibatch mode and surrogate='auto': the sources and the
  surrogate within 1e-4 of one process's, each process holding N/P rows
  of the latents (asserted in the worker)."""
  outs = _finish(_start(launch.free_port(), "equal", tmp_path))
  for i, o in enumerate(outs):
    assert f"process {i}: EQUAL-OK" in o


def _saved_step(path):
  return checkpoint.read_header(path)["meta"]["step"]


@pytest.mark.slow
def test_killed_process_stops_the_other_and_the_solve_resumes(tmp_path):
  """Process 1 killed after its checkpoint of step 3: process 0 stops by
  itself (the coordination service's heartbeat), well within 60 s; the same
  command resumes and ends bit for bit where an uninterrupted run ends."""
  steps = {"STEPS": "40"}
  run = tmp_path / "killed"
  procs = _start(launch.free_port(), "resume", run, **steps)
  part = run / "ckpt" / "p1of2" / "solve_state.ckpt"
  deadline = time.time() + 240
  while not (part.exists() and _saved_step(part) >= 3):
    assert time.time() < deadline and procs[1].poll() is None
    time.sleep(0.2)
  procs[1].kill()
  t0 = time.time()
  procs[0].wait(timeout=120)
  stopped = time.time() - t0
  assert procs[0].returncode != 0 and stopped < 60, stopped
  for p in procs:
    p.communicate()
  _finish(_start(launch.free_port(), "resume", run, **steps))
  whole = tmp_path / "whole"
  _finish(_start(launch.free_port(), "resume", whole, **steps))
  for i in range(2):
    np.testing.assert_array_equal(np.load(run / f"sources_{i}.npy"),
                                  np.load(whole / f"sources_{i}.npy"))
  print(f"the other process stopped {stopped:.1f} s after the kill")


def test_cli_launch_two_local_processes(tmp_path, tiny_run):
  """``blindinv launch --local-processes 2 -- solve ...``: the outputs are
  written once (by process 0), the same as one process's solve."""
  workdir, prior = tiny_run
  import jax

  from blindinv_jax import operators as ops
  x = prior.generate(prior.sample_latents(jax.random.key(3), 8))
  np.save(tmp_path / "y.npy", np.asarray(ops.blur(
      x, ops.gaussian_kernel(3, 1.0))))
  solve = ["solve", "--observations", str(tmp_path / "y.npy"), "--prior",
           str(workdir), "--surrogate", "conv", "--outer-steps", "2",
           "--surrogate-steps", "2", "--latent-steps", "2", "--unroll", "1"]
  cmd = [sys.executable, "-m", "blindinv_jax.cli", "launch",
         "--local-processes", "2", "--cpu-devices", "2", "--"]
  p = subprocess.run(cmd + solve + ["--out", str(tmp_path / "two")],
                     env=_env(), capture_output=True, text=True, timeout=300)
  assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
  assert "[p0] " in p.stdout and "[p1] " in p.stdout
  assert sorted(f.name for f in (tmp_path / "two" / "checkpoint").iterdir()
                ) == ["p0of2", "p1of2"]
  one = subprocess.run([sys.executable, "-m", "blindinv_jax.cli"] + solve +
                       ["--out", str(tmp_path / "one")], env=_env(),
                       capture_output=True, text=True, timeout=300)
  assert one.returncode == 0, one.stderr[-3000:]
  a = np.load(tmp_path / "two" / "sources.npy")
  b = np.load(tmp_path / "one" / "sources.npy")
  np.testing.assert_allclose(a, b, atol=1e-4)
  # Resuming with one process a solve checkpointed by two is refused.
  again = subprocess.run([sys.executable, "-m", "blindinv_jax.cli"] + solve +
                         ["--out", str(tmp_path / "two"), "--resume"],
                         env=_env(), capture_output=True, text=True,
                         timeout=300)
  assert again.returncode == 2 and "checkpointed by 2 processes" in \
      again.stderr, again.stderr[-2000:]


FAKE = textwrap.dedent("""\
  #!/bin/sh
  # Stands in for python: process 1 fails at once, process 0 would hang.
  if [ "$BLINDINV_PROCESS_ID" = "1" ]; then echo "boom"; exit 3; fi
  echo "waiting"; exec sleep 120
""")


def test_launcher_stops_the_others_when_one_fails(tmp_path, capsys):
  fake = tmp_path / "fake_python"
  fake.write_text(FAKE)
  fake.chmod(0o755)
  t0 = time.time()
  assert launch.launch(["--", "solve"], 2, python=str(fake)) == 3
  assert time.time() - t0 < launch.STOP_GRACE_S + 5
  out = capsys.readouterr()
  assert "[p1] boom" in out.out
  assert "process 1 exited with status 3; stopped the others" in out.err
  assert "--resume" in out.err


@pytest.mark.parametrize("command,processes,match", [
    ([], 2, "needs a command after '--'"),
    (["--", "train-prior"], 2, "runs 'solve'"),
    (["solve"], 0, "must be >= 1"),
])
def test_launcher_errors(command, processes, match):
  with pytest.raises(ValueError, match=match):
    launch.launch(command, processes)


def test_distributed_flags_are_checked(tmp_path, capsys):
  from blindinv_jax import cli
  argv = ["solve", "--observations", "y.npy", "--out", str(tmp_path / "o"),
          "--coordinator", "localhost:1"]
  assert cli.main(argv) == 2
  assert "missing --num-processes, --process-id" in capsys.readouterr().err
  argv += ["--num-processes", "2", "--process-id", "2"]
  assert cli.main(argv) == 2
  assert "--process-id must be in 0..1" in capsys.readouterr().err


def test_a_folder_of_another_number_of_processes_is_refused(tmp_path):
  (tmp_path / "p0of2").mkdir()
  distributed.check_processes(tmp_path, 2)
  with pytest.raises(ValueError, match="checkpointed by 2 processes; this "
                     "solve runs on one"):
    distributed.check_processes(tmp_path, 1)
  (tmp_path / "p0of2").rmdir()
  (tmp_path / "solve_state.ckpt").write_bytes(b"")
  with pytest.raises(ValueError, match="by one process; this solve runs on 2"):
    distributed.check_processes(tmp_path, 2)


def test_common_step_and_blocks_on_one_process():
  assert distributed.common_step([]) is None
  assert distributed.common_step([4, 5]) == 5
  a = np.arange(6).reshape(2, 3)
  np.testing.assert_array_equal(distributed.local_block(a), a)
  np.testing.assert_array_equal(distributed.to_host({"a": a})["a"], a)
  np.testing.assert_array_equal(distributed.first_rows(a, 1), a[:1])
  np.testing.assert_array_equal(distributed.all_values(5), [5])
