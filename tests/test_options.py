"""Experiment configs (ml_collections ConfigDicts with dotted overrides) and
the solver flags built from SolverConfig."""
import argparse
import dataclasses
import pathlib

import pytest

from blindinv_jax import options
from blindinv_jax.config import PAPER, TUNED, SolverConfig

CONFIGS = pathlib.Path(__file__).parent.parent / "experiments" / "paper" / \
    "configs"
SEP4 = str(CONFIGS / "mnist_sep4.py")


def test_every_config_converts_to_a_valid_experiment():
  for path in sorted(CONFIGS.glob("*.py")):
    cfg = options.load_experiment(path)
    assert cfg.name == path.stem
    paper = options.load_experiment(f"{path}:paper")
    assert paper.name == path.stem + "_paper" and paper.solver == PAPER


def test_dotted_overrides_reach_the_typed_config():
  cfg, _ = options.parse_flags(
      [f"--config={SEP4}", "--config.data.split=val", "--config.data.n=4",
       "--config.solver.latent_lr=0.05", "--config.solver.batch_size=2",
       "--config.solver.unroll=5", "--config.methods=blind,ica"], "doc")
  base = options.load_experiment(SEP4)
  assert cfg == base.replace(
      data=dataclasses.replace(base.data, split="val", n=4),
      solver=base.solver.replace(latent_lr=0.05, batch_size=2, unroll=5),
      methods=("blind", "ica"))


@pytest.mark.parametrize("argv, says", [
    ([f"--config={SEP4}", "--config.solver.nope=1"],
     "--config.solver.nope: the config has no such field"),
    (["--config=nofile.py"], "no file at 'nofile.py'"),
    ([f"--config={SEP4}", "--config.data.n=abc"], "config.data.n"),
    ([f"--config={SEP4}", "--config.methods=blind,nope"],
     "unknown method(s) ['nope']"),
])
def test_bad_flags_exit_2_with_one_line(argv, says, capsys):
  with pytest.raises((SystemExit, ValueError)) as e:
    options.parse_flags(argv, "doc")
  err = capsys.readouterr().err
  if e.type is SystemExit:
    assert e.value.code == 2 and says in err, err
  else:
    assert says in str(e.value)


def test_solver_flags_cover_every_field_and_parse_back():
  flags = options.solver_flags()
  assert {f for f, *_ in flags.values()} == {
      f.name for f in dataclasses.fields(SolverConfig)}
  ap = argparse.ArgumentParser()
  options.add_solver_args(ap)
  args = ap.parse_args(["--schedule", "paper", "--unroll", "full",
                        "--grad-pieces", "2", "--latent-lr-end", "1e-4"])
  assert options.solver_config(args) == PAPER.replace(
      unroll="full", grad_pieces=2, latent_lr_end=1e-4)
  assert options.solver_config(ap.parse_args([])) == TUNED
