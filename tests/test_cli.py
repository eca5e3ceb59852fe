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
  cfg = cli.load_train_config("experiments/assets/prior_mnist.py")
  assert cfg.model == "dcgan28_gray" and cfg.data == "mnist5k"
  assert cfg.limit == 4000 and cfg.ema_decay == 0.999 and cfg.seed == 0
  old = cli.load_train_config("experiments/assets/prior_mnist_v1.py")
  assert old.model == "mnist28" and old.limit is None


@pytest.mark.parametrize("argv,match", [
    (["train-prior", "--config", "nope.py", "--workdir", "w"],
     "neither a model preset"),
    (["train-prior", "--config", "tiny", "--workdir", "w", "--steps", "0"],
     "steps must be a positive int"),
    (["demo", "--prior", "missing.ckpt"], "No prior named"),
    (["demo", "--n", "0"], "--n must be between 1 and 500"),
    (["demo", "--outer-steps", "0"], "--outer-steps must be a positive int"),
])
def test_errors_are_one_message_without_traceback(argv, match, capsys,
                                                  tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert cli.main(argv) == 2
  err = capsys.readouterr().err
  assert match in err and "Traceback" not in err


@pytest.fixture
def quick_demo(monkeypatch):
  """The demo's schedule cut to 2+2 inner steps so it runs in seconds."""
  from blindinv_jax import solver
  monkeypatch.setattr(solver, "FAST", solver.FAST.replace(
      surrogate_steps=2, latent_steps=2, unroll=1))


def test_demo_small_and_refuses_existing_output(tmp_path, quick_demo, capsys):
  out = tmp_path / "demo"
  assert cli.main(["demo", "--out", str(out), "--n", "3", "--outer-steps",
                   "2"]) == 0
  m = json.loads((out / "metrics.json").read_text())
  assert m["n"] == 3 and m["task"] == "blur" and m["boundary"] == "scene"
  assert m["recentred"]["kept"] in ("first", "second")   # solved again
  assert m["config"]["outer_steps"] == 2
  assert len(m["psnr_recovered_per_digit"]) == 3
  assert 10 < m["psnr_observation"][0] < 20 and 0 < m["ssim_observation"][0] < 1
  assert set(m["kernel"]) == {"error", "ncc", "shift", "scale"}
  for name in ("samples.png", "figure.png", "kernel.png", "recovered.npy",
               "observations.npy", "effective_kernel.npy"):
    assert (out / name).exists(), name
  printed = capsys.readouterr().out
  assert "observation PSNR" in printed and "recovered   PSNR" in printed
  assert cli.main(["demo", "--out", str(out), "--n", "3"]) == 2
  assert cli.main(["demo", "--out", str(out), "--n", "3", "--outer-steps",
                   "1", "--task", "sobel", "--boundary", "zero",
                   "--overwrite"]) == 0
  m = json.loads((out / "metrics.json").read_text())
  assert m["task"] == "sobel" and m["recentred"] is None  # the frame pins it


@pytest.mark.slow
def test_demo_default_beats_the_observation_by_4db(tmp_path):
  """The README's main job, end to end, with the shipped prior."""
  assert cli.main(["demo", "--out", str(tmp_path / "demo")]) == 0
  m = json.loads((tmp_path / "demo" / "metrics.json").read_text())
  assert m["psnr_recovered"][0] >= m["psnr_observation"][0] + 4.0
  assert m["kernel"]["error"] < 0.2


def test_solve_command_writes_all_outputs(tiny_run, tmp_path):
  import jax
  import numpy as np

  from blindinv_jax import operators as ops
  workdir, prior = tiny_run
  x = prior.generate(prior.sample_latents(jax.random.key(0), 4))
  np.savez(tmp_path / "obs.npz", y=np.asarray(
      ops.blur(x, ops.gaussian_kernel(3, 1.0))))
  out = tmp_path / "solve"
  argv = ["solve", "--observations", str(tmp_path / "obs.npz"), "--prior",
          str(workdir), "--sources", "1", "--surrogate", "conv",
          "--outer-steps", "2", "--surrogate-steps", "2", "--latent-steps",
          "2", "--out", str(out)]
  assert cli.main(argv) == 0
  for name in ("sources.npy", "reconstruction.npy", "surrogate_params.msgpack",
               "effective_kernel.npy", "history.json", "figure.png"):
    assert (out / name).exists(), name
  assert np.load(out / "sources.npy").shape == (4, 1, 8, 8, 1)
  assert np.load(out / "effective_kernel.npy").shape == (9, 9, 1, 1)
  hist = json.loads((out / "history.json").read_text())
  assert len(hist["history"]["latent_loss"]) == 2
  assert hist["refine"] is None
  assert cli.main(argv) == 2                        # refuses to overwrite
  # --refine R: R fresh latent starts per observation after the solve; no
  # observation's data loss grows.
  before = hist["summary"]["data_loss_per_observation"]
  assert cli.main(argv + ["--overwrite", "--refine", "2"]) == 0
  hist = json.loads((out / "history.json").read_text())
  assert hist["refine"]["restarts"] == 2 and len(hist["refine"]["picked"]) == 4
  after = hist["summary"]["data_loss_per_observation"]
  assert all(a <= b + 1e-4 for a, b in zip(after, before))
  assert cli.main(argv + ["--overwrite", "--refine", "-1"]) == 2


def test_the_closing_hint_is_a_command_that_runs(tiny_run, tmp_path,
                                                  capsys):
  """print_solve_summary's prior-report hint names the data the prior was trained
  on (its checkpoint's record), and runs as printed; a prior with no record
  gets words, never a placeholder such as SOURCE."""
  import shlex

  import numpy as np

  from blindinv_jax import priors, report
  workdir, prior = tiny_run
  hint = report.prior_report_hint(str(workdir), prior)
  argv = shlex.split(hint.split(" (")[0])
  assert argv[:2] == ["blindinv", "prior-report"] and "mnist5k" in argv
  assert cli.main(argv[1:] + ["--n", "2", "--steps", "2", "--out",
                              str(tmp_path / "report")]) == 0
  assert (tmp_path / "report" / "report.json").exists()
  bare = priors.from_function(lambda p, z: z.reshape(-1, 2, 2, 1),
                              np.zeros(()), latent_dim=4)
  for p in (bare, None):
    words = report.prior_report_hint("my_prior:make", p)
    assert "SOURCE" not in words and "PATH" not in words
    assert "--data naming held-out images like your sources" in words
  capsys.readouterr()


def test_solve_kernel_size_widens_the_conv_surrogate(tiny_run, tmp_path,
                                                     capsys):
  """--kernel-size 20: a 21x21 effective kernel (each conv 11 wide), kept
  in history.json; refused, before any work, for a per-pixel surrogate."""
  import numpy as np
  workdir, prior = tiny_run
  np.save(tmp_path / "y.npy", np.zeros((2, 8, 8, 1), np.float32))
  argv = ["solve", "--observations", str(tmp_path / "y.npy"), "--prior",
          str(workdir), "--outer-steps", "1", "--surrogate-steps", "2",
          "--latent-steps", "2", "--kernel-size", "20"]
  out = tmp_path / "wide"
  assert cli.main(argv + ["--surrogate", "conv", "--out", str(out)]) == 0
  assert np.load(out / "effective_kernel.npy").shape == (21, 21, 1, 1)
  assert json.loads((out / "history.json").read_text())["kernel_size"] == 20
  assert "estimated kernel: " in capsys.readouterr().out
  assert cli.main(argv + ["--surrogate", "mixing", "--out",
                          str(tmp_path / "mixing")]) == 2
  assert "'mixing' is per-pixel and has no kernel" in capsys.readouterr().err
  assert not (tmp_path / "mixing").exists()


@pytest.mark.slow          # CI's 15-minute budget; runs with -m slow
def test_solve_summary_truth_kernel_and_notes(tiny_run, tmp_path, capsys):
  """The end of a solve says what was found; input notes come before the
  progress bar; --truth scores the recovery."""
  import jax
  import numpy as np

  from blindinv_jax import operators as ops
  workdir, prior = tiny_run
  x = prior.generate(prior.sample_latents(jax.random.key(0), 4))
  y = np.asarray(ops.blur(x, ops.gaussian_kernel(3, 1.0)))
  np.save(tmp_path / "y01.npy", (y + 1) / 2)            # a 0..1 copy
  np.save(tmp_path / "truth.npy", np.asarray(x))
  argv = ["solve", "--observations", str(tmp_path / "y01.npy"), "--prior",
          str(workdir), "--outer-steps", "1", "--surrogate-steps", "2",
          "--latent-steps", "2", "--truth", str(tmp_path / "truth.npy"),
          "--surrogate", "conv", "--out", str(tmp_path / "out")]
  assert cli.main(argv) == 0
  captured = capsys.readouterr()
  assert "warning: observations lie in [0, 1]" in captured.err
  assert "pass --range 0,1" in captured.err
  assert captured.err.index("warning:") < captured.err.index("solve:")
  assert "UserWarning" not in captured.err             # said once, as a note
  for line in ("data loss |F_hat(x) - y| per pixel", "estimated kernel: ",
               "against --truth: PSNR", "blindinv prior-report --prior"):
    assert line in captured.out, line
  assert (tmp_path / "out" / "kernel.png").exists()
  summary = json.loads((tmp_path / "out" / "history.json").read_text())[
      "summary"]
  assert len(summary["data_loss_per_observation"]) == 4
  assert set(summary["kernel"]) == {"size", "centre_offset"}
  assert summary["truth"]["psnr"][0] > 0


@pytest.mark.slow          # CI's 15-minute budget; runs with -m slow
def test_prior_report_command(tiny_run, tmp_path, capsys):
  workdir, _ = tiny_run
  out = tmp_path / "rep"
  assert cli.main(["prior-report", "--prior", str(workdir), "--data",
                   "mnist5k", "--n", "6", "--steps", "5", "--out",
                   str(out)]) == 0
  printed = capsys.readouterr().out
  assert "representation error: PSNR" in printed
  assert "recoveries cannot be much better than" in printed
  rep = json.loads((out / "report.json").read_text())
  assert rep["n"] == 6 and len(rep["psnr_per_image"]) == 6
  assert rep["psnr_min"] == min(rep["psnr_per_image"]) or abs(
      rep["psnr_min"] - min(rep["psnr_per_image"])) < 0.01
  for name in ("samples.png", "worst.png"):
    assert (out / name).exists(), name


def test_prior_report_prints_the_extended_ceiling_and_progress(
    tiny_run, tmp_path, capsys):
  workdir, _ = tiny_run
  out = tmp_path / "rep"
  assert cli.main(["prior-report", "--prior", str(workdir), "--data",
                   "mnist5k", "--n", "4", "--steps", "20", "--out", str(out),
                   "--extension", "ilo", "--extension-depth", "1",
                   "--extension-radius", "0.05"]) == 0
  captured = capsys.readouterr()
  assert "with the range extension (ilo at depth 1" in captured.out
  assert "extended projection" in captured.err and "20/20" in captured.err
  rep = json.loads((out / "report.json").read_text())
  assert len(rep["extended"]["psnr_per_image"]) == 4


def test_solve_command_bad_observations(tiny_run, tmp_path, capsys):
  import numpy as np
  workdir, _ = tiny_run
  np.save(tmp_path / "bad.npy", np.zeros((2, 28, 28, 1), np.float32))
  assert cli.main(["solve", "--observations", str(tmp_path / "bad.npy"),
                   "--prior", str(workdir), "--out", str(tmp_path / "o")]) == 2
  assert "prior generates 8x8" in capsys.readouterr().err
  assert cli.main(["solve", "--observations", str(tmp_path / "none.npy"),
                   "--out", str(tmp_path / "o")]) == 2


def test_solve_resume(tiny_run, tmp_path, capsys):
  import jax
  import numpy as np

  from blindinv_jax import operators as ops
  workdir, prior = tiny_run
  x = prior.generate(prior.sample_latents(jax.random.key(0), 3))
  np.save(tmp_path / "obs.npy", np.asarray(ops.blur(x, ops.gaussian_kernel(
      3, 1.0))))
  out = tmp_path / "solve"
  base = ["solve", "--observations", str(tmp_path / "obs.npy"), "--prior",
          str(workdir), "--surrogate-steps", "2", "--latent-steps", "2",
          "--out", str(out), "--checkpoint-every", "1"]
  assert cli.main(base + ["--resume", "--outer-steps", "2"]) == 2
  assert "no solve checkpoint" in capsys.readouterr().err
  assert cli.main(base + ["--outer-steps", "2"]) == 0
  assert (out / "checkpoint" / "solve_state.ckpt").exists()
  assert cli.main(base + ["--outer-steps", "3"]) == 2       # not empty
  assert cli.main(base + ["--outer-steps", "3", "--resume"]) == 0
  hist = json.loads((out / "history.json").read_text())
  assert len(hist["history"]["latent_loss"]) == 3
  # --surrogate auto (the default): the same choice on resuming, reported
  assert "chose surrogate=" in capsys.readouterr().err
  assert hist["surrogate"] == hist["choice"]["family"]
  from blindinv_jax.models.surrogates import FAMILIES
  assert len(hist["choice"]["candidates"]) == len(FAMILIES)
  assert cli.main(base + ["--outer-steps", "3", "--resume", "--latent-lr",
                          "0.1"]) == 2
  assert "different solve" in capsys.readouterr().err


@pytest.mark.slow          # CI's 15-minute budget; runs with -m slow
def test_prior_report_ranks_snapshots(tiny_run, tmp_path, capsys):
  workdir, _ = tiny_run
  assert cli.main(["prior-report", "--prior", str(workdir), "--data",
                   "mnist5k", "--split", "val", "--n", "4", "--steps", "3",
                   "--snapshots", "--out", str(tmp_path / "r")]) == 0
  ranks = json.loads((tmp_path / "r" / "snapshots.json").read_text())
  assert set(ranks["psnr"]) == {"prior_0000003.ckpt", "prior_0000006.ckpt"}
  assert ranks["best"] in ranks["psnr"] and ranks["split"] == "val"
  assert "best on val:" in capsys.readouterr().out



def test_solve_reports_every_input_problem_at_once(tiny_run, tmp_path,
                                                   capsys):
  import numpy as np
  workdir, _ = tiny_run
  y = np.zeros((3, 1, 8, 8), np.float32)             # NCHW, as PyTorch
  y[0, 0, 0, 0] = np.nan
  np.save(tmp_path / "y.npy", y)
  np.save(tmp_path / "t.npy", np.zeros((3, 5, 5, 1), np.float32))
  argv = ["solve", "--observations", str(tmp_path / "y.npy"), "--prior",
          str(workdir), "--truth", str(tmp_path / "t.npy"), "--out",
          str(tmp_path / "out")]
  assert cli.main(argv) == 2
  err = capsys.readouterr().err
  assert "3 problems" in err and "pass --layout nchw" in err
  assert "1 NaN or Inf" in err and "the --truth sources are 5x5" in err
  assert not (tmp_path / "out").exists()              # nothing ran


def test_solve_takes_nchw_0_1_arrays_with_layout_and_range(
    tiny_run, tmp_path, capsys, monkeypatch):
  import jax
  import numpy as np

  from blindinv_jax import operators as ops, viz
  workdir, prior = tiny_run
  drawn = {}
  monkeypatch.setattr(viz, "save_rows", lambda path, rows, labels, **kw:
                      drawn.update({path.name: (rows, labels)}))
  x = np.asarray(prior.generate(prior.sample_latents(jax.random.key(0), 3)))
  y = np.asarray(ops.blur(x, ops.gaussian_kernel(3, 1.0)))
  nchw01 = (np.transpose(y, (0, 3, 1, 2)) + 1) / 2
  np.save(tmp_path / "y.npy", nchw01)
  np.save(tmp_path / "t.npy", (np.transpose(x, (0, 3, 1, 2)) + 1) / 2)
  argv = ["solve", "--observations", str(tmp_path / "y.npy"), "--prior",
          str(workdir), "--truth", str(tmp_path / "t.npy"), "--layout",
          "nchw", "--range", "0,1", "--surrogate", "conv", "--outer-steps",
          "1", "--surrogate-steps", "2", "--latent-steps", "2", "--out",
          str(tmp_path / "out")]
  assert cli.main(argv) == 0
  captured = capsys.readouterr()
  assert "warning:" not in captured.err
  assert "against --truth: PSNR" in captured.out
  rec = np.load(tmp_path / "out" / "reconstruction.npy")
  assert rec.shape == y.shape
  rows, labels = drawn["figure.png"]      # the truth, converted, at the foot
  assert labels[-1] == "original"
  np.testing.assert_allclose(rows[-1], x, atol=1e-6)
