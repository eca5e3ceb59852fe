import json

import pytest

from blindinv_jax import cli


def test_train_prior_command_and_resume(tmp_path, capsys):
  args = ["train-prior", "--config", "tiny", "--workdir", str(tmp_path),
          "--steps", "3", "--batch-size", "8"]
  assert cli.main(args) == 0
  assert (tmp_path / "prior.ckpt").exists()
  cfg = json.loads((tmp_path / "config.json").read_text())
  assert cfg["command"].startswith("blindinv train-prior --config tiny")
  args[args.index("--steps") + 1] = "5"
  assert cli.main(args) == 0                      # resumes from step 3
  log = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
  assert [r["step"] for r in log][-1] == 5


def test_config_file(tmp_path):
  cfg = cli.load_train_config("experiments/configs/prior_mnist.py")
  assert cfg.model == "mnist28" and cfg.data == "mnist5k" and cfg.seed == 0


@pytest.mark.parametrize("argv,match", [
    (["train-prior", "--config", "nope.py", "--workdir", "w"],
     "neither a model preset"),
    (["train-prior", "--config", "tiny", "--workdir", "w", "--steps", "0"],
     "steps must be a positive int"),
    (["demo", "--prior", "missing.ckpt"], "No prior named"),
])
def test_errors_are_one_message_without_traceback(argv, match, capsys,
                                                  tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert cli.main(argv) == 2
  err = capsys.readouterr().err
  assert match in err and "Traceback" not in err


def test_demo_small_and_refuses_existing_output(tmp_path):
  out = tmp_path / "demo"
  assert cli.main(["demo", "--out", str(out), "--n", "3", "--steps",
                   "5"]) == 0
  m = json.loads((out / "metrics.json").read_text())
  assert m["n"] == 3 and len(m["psnr"]) == 3 and m["psnr_mean"] > 5
  assert (out / "samples.png").exists() and (out / "projection.png").exists()
  assert cli.main(["demo", "--out", str(out), "--n", "3"]) == 2
  assert cli.main(["demo", "--out", str(out), "--n", "3", "--steps", "5",
                   "--overwrite"]) == 0


@pytest.mark.slow
def test_demo_default_reaches_representation_target(tmp_path):
  """The README's main job, end to end: 50 held-out digits, 1,000 steps."""
  assert cli.main(["demo", "--out", str(tmp_path / "demo")]) == 0
  m = json.loads((tmp_path / "demo" / "metrics.json").read_text())
  assert m["psnr_mean"] >= 25.0
