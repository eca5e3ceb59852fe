"""Shared fixtures: a TINY prior trained for a few steps, once per session.

The suite is compile-bound: its solves take milliseconds on TINY sizes, and
XLA's compilation of each new step function takes seconds. So it runs with
JAX's ``jax_disable_most_optimizations`` (set here through the environment,
before jax is imported, so the CLI tests' subprocesses get it too), which
compiles about twice as fast. ``BLINDINV_TEST_OPTIMIZE=1 pytest`` runs the
suite with XLA's full optimizations instead.
"""
import importlib.util
import os
import pathlib
import sys

if os.environ.get("BLINDINV_TEST_OPTIMIZE", "0") in ("", "0"):
  os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

import pytest

from blindinv_jax import training

TINY_TRAIN = training.TrainConfig(
    model="tiny", data="mnist5k", batch_size=16, steps=6, sample_every=3,
    checkpoint_every=3, snapshot_every=3, log_every=2)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
  """(workdir, GANPrior) of a 6-step TINY run on mnist5k resized to 8x8."""
  workdir = tmp_path_factory.mktemp("tiny_run")
  prior = training.train_prior(TINY_TRAIN, workdir, progress=False)
  return workdir, prior


ROOT = pathlib.Path(__file__).parent.parent


def load_experiment_module(path: str):
  """Imports ``experiments/<group>/<name>.py`` (not a package) as a module."""
  name = pathlib.Path(path).stem
  spec = importlib.util.spec_from_file_location(
      name, ROOT / "experiments" / f"{path}.py")
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module               # its dataclasses look it up
  spec.loader.exec_module(module)
  return module


def solve_step(state, y, prior, surrogate, config):
  """One outer step exactly as ``solve`` runs it: the runner's jitted chunk
  of :func:`blindinv_jax.algorithm.outer_step`, or of
  :func:`blindinv_jax.minibatch.minibatch_outer_step` when
  ``config.batch_size`` is set (the state is donated)."""
  from blindinv_jax import algorithm, minibatch, runner
  step = (algorithm.outer_step if config.batch_size is None
          else minibatch.minibatch_outer_step)
  return runner.Compiled(step, settings=runner.Settings.of(config),
                         surrogate=surrogate, config=config)(state, y,
                                                             prior=prior)


@pytest.fixture(autouse=True, scope="module")
def _fresh_jax_caches():
  """Each test module starts with JAX's compiled programs cleared: the
  fast suite compiles hundreds of programs in one process, and keeping them
  all was seen to crash XLA:CPU's compiler late in the run."""
  yield
  import jax
  jax.clear_caches()
