"""Every bad input we know of, and the message it gets: docs/errors.md.

The table in docs/errors.md is generated from CASES below; this test fails if
the file and the messages drift apart. Regenerate it with

  BLINDINV_WRITE_ERRORS_MD=1 pytest tests/test_errors.py
"""
import os
import pathlib
import warnings

import numpy as np
import pytest

from blindinv_jax import (
  baselines,
  checkpoint,
  cli,
  data,
  priors,
  refine,
  runner,
  solver,
  validation,
)

DOC = pathlib.Path(__file__).parent.parent / "docs" / "errors.md"
Y = np.zeros((2, 8, 8, 1), np.float32)       # valid for the TINY 8x8 prior


def _solve(y=Y, **kw):
  return lambda ctx: solver.solve(y, ctx["prior"], **kw)


def _cfg(**kw):
  return _solve(config=solver.SolverConfig(**kw))


def _prior_file(mutate):
  def run(ctx):
    src = ctx["workdir"] / "prior.ckpt"
    dst = ctx["tmp"] / "bad_prior.ckpt"
    dst.write_bytes(mutate(src.read_bytes()))
    priors.load_prior(str(dst))
  return run


def _newer(raw: bytes) -> bytes:
  return raw.replace(b'"format_version": 1', b'"format_version": 9', 1)


def _flip(raw: bytes) -> bytes:
  b = bytearray(raw)
  b[-3] ^= 0xFF
  return bytes(b)


def _other_kind(ctx):
  path = ctx["tmp"] / "other.ckpt"
  checkpoint.save(path, {"a": np.zeros(2)}, kind="solver_state")
  priors.load_prior(str(path))


def _no_discriminator(latent_dim=4):
  from blindinv_jax import priors
  return priors.from_function(
      lambda p, z: (z @ p).reshape(z.shape[0], 8, 8, 1),
      np.zeros((4, 64), np.float32), latent_dim=latent_dim)


def _identity(params, x):
  return x[:, 0]


def _cli(*argv):
  def run(ctx):
    argv_t = [a.replace("<tmp>", str(ctx["tmp"])).replace(
        "<workdir>", str(ctx["workdir"])) for a in argv]
    rc = cli.main(list(argv_t))
    assert rc == 2, rc
  return run


def _cli_setup(ctx):
  np.save(ctx["tmp"] / "obs.npy", Y)
  np.save(ctx["tmp"] / "obs3d.npy", Y[..., 0])
  (ctx["tmp"] / "full").mkdir(exist_ok=True)
  (ctx["tmp"] / "full" / "x.txt").write_text("x")
  (ctx["tmp"] / "notes.txt").write_text("not an array")
  (ctx["tmp"] / "fake.npy").write_text("not an array")
  from PIL import Image
  (ctx["tmp"] / "rgb").mkdir(exist_ok=True)
  Image.new("RGB", (8, 8), (200, 10, 10)).save(ctx["tmp"] / "rgb" / "a.png")


# (entry point, bad input, callable(ctx))
def _two_process_folder(ctx):
  folder = ctx["tmp"] / "two_processes"
  (folder / "p0of2").mkdir(parents=True, exist_ok=True)
  return folder


CASES = [
    ("solve", "observations of rank 3 [N, H, W]", _solve(Y[..., 0])),
    ("solve", "observations of rank 1", _solve(Y.ravel())),
    ("solve", "no observations (N = 0)", _solve(Y[:0])),
    ("solve", "28x28 observations, 8x8 prior", _solve(np.zeros((2, 28, 28, 1)))),
    ("solve", "a NaN in the observations", _solve(np.where(
        np.arange(Y.size).reshape(Y.shape) == 3, np.nan, Y))),
    ("solve", "+Inf in the observations", _solve(Y + np.inf)),
    ("solve", "complex observations", _solve(Y.astype(np.complex64))),
    ("solve", "boolean observations", _solve(Y > 0)),
    ("solve", "observations [N, C, H, W] (channels first)",
     _solve(np.zeros((2, 1, 8, 8), np.float32))),
    ("solve", "num_sources=0", _solve(num_sources=0)),
    ("solve", "num_sources=1.5", _solve(num_sources=1.5)),
    ("solve", "surrogate='mlp'", _solve(surrogate="mlp")),
    ("solve", "a surrogate with the wrong output channels",
     lambda ctx: solver.solve(Y, ctx["prior"], surrogate=__import__(
         "flax.linen", fromlist=["Conv"]).Conv(3, (3, 3)))),
    ("solve", "checkpoint_every=0", _solve(checkpoint_every=0)),
    ("SolverConfig", "outer_steps=0", _cfg(outer_steps=0)),
    ("SolverConfig", "latent_steps=-5", _cfg(latent_steps=-5)),
    ("SolverConfig", "restarts=True", _cfg(restarts=True)),
    ("SolverConfig", "latent_lr=0", _cfg(latent_lr=0.0)),
    ("SolverConfig", "surrogate_lr=nan", _cfg(surrogate_lr=float("nan"))),
    ("SolverConfig", "alpha=-1", _cfg(alpha=-1.0)),
    ("SolverConfig", "loss='l3'", _cfg(loss="l3")),
    ("SolverConfig", "unroll=0", _cfg(unroll=0)),
    ("SolverConfig", "grad_pieces=0", _cfg(grad_pieces=0)),
    ("SolverConfig", "select='middle'", _cfg(select="middle")),
    ("SolverConfig", "extension='wavelet'", _cfg(extension="wavelet")),
    ("SolverConfig", "extension_radius=0", _cfg(extension="ilo",
                                                extension_radius=0.0)),
    ("solve", "extension='ilo' at a depth the prior does not have",
     _cfg(extension="ilo", extension_depth=7)),
    ("solve", "extension='ilo' with a prior without the intermediate-layer "
     "hook", lambda ctx: solver.solve(Y, _no_discriminator(), config=(
         solver.SolverConfig(extension="ilo", alpha=0.0)))),
    ("solve", "select='centred' with a per-pixel surrogate",
     _solve(surrogate="mixing", config=solver.TUNED.replace(
         select="centred"))),
    ("SolverConfig", "recentre_restarts=0", _cfg(recentre_restarts=0)),
    ("solve", "init_latents [R, N, S, L] with surrogate='auto'",
     lambda ctx: solver.solve(Y, ctx["prior"], surrogate="auto",
                              init_latents=np.zeros(
                                  (2, 2, 1, ctx["prior"].latent_dim),
                                  np.float32))),
    ("solve", "a plain function as the prior",
     lambda ctx: solver.solve(Y, lambda z: z)),
    ("solve", "alpha=1e-4 set with a prior that has no discriminator",
     lambda ctx: solver.solve(Y, _no_discriminator(),
                              config=solver.TUNED.replace(alpha=1e-4))),
    ("priors.from_function", "a generator that returns [B, H*W]",
     lambda ctx: __import__("blindinv_jax.priors", fromlist=["x"]).
     from_function(lambda p, z: z @ p, np.zeros((4, 64), np.float32),
                   latent_dim=4)),
    ("priors.from_function", "latent_dim that the generator cannot take",
     lambda ctx: _no_discriminator(latent_dim=5)),
    ("baselines.pgd", "no forward model with num_sources=2",
     lambda ctx: baselines.pgd(Y, ctx["prior"], num_sources=2)),
    ("baselines.pgd", "forward='blur' (not a function)",
     lambda ctx: baselines.pgd(Y, ctx["prior"], forward="blur")),
    ("baselines.pgd", "observations of rank 3", lambda ctx: baselines.pgd(
        Y[..., 0], ctx["prior"])),
    ("refine.refine_latents", "latents of 1 observation for 2",
     lambda ctx: refine.refine_latents(
         Y, ctx["prior"], _identity, None, np.zeros((1, 1, 8), np.float32))),
    ("refine.refine_latents", "restarts=0",
     lambda ctx: refine.refine_latents(
         Y, ctx["prior"], _identity, None, np.zeros((2, 1, 8), np.float32),
         restarts=0)),
    ("baselines.wiener_deconvolution", "a 1-D kernel",
     lambda ctx: baselines.wiener_deconvolution(Y, np.ones(3))),
    ("baselines.wiener_deconvolution", "balance=-1",
     lambda ctx: baselines.wiener_deconvolution(Y, np.ones((3, 3)), -1.0)),
    ("baselines.ica", "observations of rank 3",
     lambda ctx: baselines.ica(Y[..., 0], 2)),
    ("baselines.naive_additive", "num_sources=0",
     lambda ctx: baselines.naive_additive(Y, ctx["prior"], 0)),
    ("load_images", "source='cifar'",
     lambda ctx: data.load_images("cifar")),
    ("load_images", "split='validation' for mnist5k",
     lambda ctx: data.load_images("mnist5k", "validation")),
    ("load_images", "limit=0", lambda ctx: data.load_images(limit=0)),
    ("load_images", "image_size=(0, 8)",
     lambda ctx: data.load_images(image_size=(0, 8))),
    ("load_images", "a folder that does not exist",
     lambda ctx: data.load_images(f"folder:{ctx['tmp']}/no_such_folder")),
    ("load_images", "a tfds dataset that is not prepared",
     lambda ctx: data.load_images("tfds:mnist", data_dir=str(
         ctx["tmp"] / "tfds"))),
    ("load_prior", "an unknown name", lambda ctx: priors.load_prior(
        "cifar")),
    ("load_prior", "a truncated file", _prior_file(lambda b: b[:len(b) // 2])),
    ("load_prior", "a corrupted file (one byte flipped)", _prior_file(_flip)),
    ("load_prior", "a file that is not a checkpoint",
     _prior_file(lambda b: b"PK\x03\x04" + b[4:])),
    ("load_prior", "a file from a newer format version", _prior_file(_newer)),
    ("load_prior", "a solver-state checkpoint", _other_kind),
    ("blindinv solve", "--observations missing.npy",
     _cli("solve", "--observations", "<tmp>/missing.npy", "--prior",
          "<workdir>", "--out", "<tmp>/o1")),
    ("blindinv solve", "--observations a text file",
     _cli("solve", "--observations", "<tmp>/notes.txt", "--prior",
          "<workdir>", "--out", "<tmp>/o2")),
    ("blindinv solve", "--observations a .npy file that is not an array",
     _cli("solve", "--observations", "<tmp>/fake.npy", "--prior",
          "<workdir>", "--out", "<tmp>/o2b")),
    ("blindinv solve", "--observations of rank 3",
     _cli("solve", "--observations", "<tmp>/obs3d.npy", "--prior",
          "<workdir>", "--out", "<tmp>/o3")),
    ("blindinv solve", "--out an existing, non-empty folder",
     _cli("solve", "--observations", "<tmp>/obs.npy", "--prior",
          "<workdir>", "--out", "<tmp>/full")),
    ("blindinv solve", "--resume with nothing to resume",
     _cli("solve", "--observations", "<tmp>/obs.npy", "--prior",
          "<workdir>", "--out", "<tmp>/o4", "--resume")),
    ("blindinv solve", "--sources 0",
     _cli("solve", "--observations", "<tmp>/obs.npy", "--prior",
          "<workdir>", "--out", "<tmp>/o5", "--sources", "0")),
    ("blindinv solve", "--latent-lr -1",
     _cli("solve", "--observations", "<tmp>/obs.npy", "--prior",
          "<workdir>", "--out", "<tmp>/o6", "--latent-lr", "-1")),
    ("blindinv solve", "--precision fp16",
     _cli("solve", "--observations", "<tmp>/obs.npy", "--prior",
          "<workdir>", "--out", "<tmp>/o6b", "--precision", "fp16")),
    ("blindinv solve", "--refine -1",
     _cli("solve", "--observations", "<tmp>/obs.npy", "--prior",
          "<workdir>", "--out", "<tmp>/o6c", "--refine", "-1")),
    ("blindinv solve", "--coordinator without --num-processes, --process-id",
     _cli("solve", "--observations", "<tmp>/obs.npy", "--prior",
          "<workdir>", "--out", "<tmp>/o6d", "--coordinator",
          "localhost:1")),
    ("solve", "checkpoint_dir of a solve on 2 processes, on one",
     lambda ctx: solver.solve(Y, ctx["prior"], surrogate="conv",
                              checkpoint_dir=_two_process_folder(ctx))),
    ("blindinv solve", "--prior nope",
     _cli("solve", "--observations", "<tmp>/obs.npy", "--prior", "nope",
          "--out", "<tmp>/o7")),
    ("blindinv demo", "--n 0", _cli("demo", "--n", "0", "--out", "<tmp>/d")),
    ("blindinv demo", "--out an existing, non-empty folder",
     _cli("demo", "--out", "<tmp>/full")),
    ("blindinv prior-report", "--data with 3 channels, grayscale prior",
     _cli("prior-report", "--prior", "<workdir>", "--data", "folder:<tmp>/rgb",
          "--out", "<tmp>/rep")),
    ("blindinv prior-report", "--observations of rank 3",
     _cli("prior-report", "--prior", "<workdir>", "--data", "mnist5k",
          "--observations", "<tmp>/obs3d.npy", "--out", "<tmp>/rep2")),
    ("blindinv train-prior", "--config nope.py",
     _cli("train-prior", "--config", "nope.py", "--workdir", "<tmp>/w")),
    ("blindinv train-prior", "--steps 0",
     _cli("train-prior", "--config", "tiny", "--steps", "0", "--workdir",
          "<tmp>/w")),
]

WARNINGS = [
    ("solve", "observations in 0..255 (not rescaled)",
     lambda ctx: validation.warn_if_out_of_range(Y + 255.0)),
    ("solve", "observations in 0..1 (not rescaled)",
     lambda ctx: validation.warn_if_out_of_range(Y + 0.5)),
    ("solve", "RGB observations with a grayscale prior",
     lambda ctx: validation.warn_if_out_of_range(
         np.zeros((2, 8, 8, 3), np.float32), prior=ctx["prior"])),
]


def _message(exc_or_text: str, ctx) -> str:
  text = str(exc_or_text).strip()
  for k in ("workdir", "tmp"):
    text = text.replace(str(ctx[k]), f"<{k}>")
  return " ".join(text.split()).replace("|", "\\|")


def _render(rows) -> str:
  lines = ["# Errors and warnings", "",
           "Every bad input the test suite tries, and what the user sees. "
           "Generated by `tests/test_errors.py` (regenerate with "
           "`BLINDINV_WRITE_ERRORS_MD=1 pytest tests/test_errors.py`). The "
           "CLI prints the same messages, without a traceback, and exits "
           "with status 2. Paths are shown as `<tmp>` and `<workdir>`.", "",
           "| entry point | bad input | raises | message |",
           "|---|---|---|---|"]
  lines += [f"| `{e}` | {d} | `{k}` | {m} |" for e, d, k, m in rows]
  return "\n".join(lines) + "\n"


@pytest.fixture
def ctx(tiny_run, tmp_path):
  workdir, prior = tiny_run
  c = {"prior": prior, "workdir": workdir, "tmp": tmp_path}
  _cli_setup(c)
  return c


def test_errors_table_is_current(ctx, capsys):
  rows = []
  jitted = (runner.run_chunk, solver.init_state)
  before = [f._cache_size() for f in jitted]
  for entry, desc, fn in CASES:
    capsys.readouterr()
    if entry.startswith("blindinv"):
      fn(ctx)
      err = capsys.readouterr().err
      assert "Traceback" not in err
      prefix = err.split(": error: ", 1)
      assert len(prefix) == 2, (entry, desc, err)
      rows.append((entry, desc, "exit 2", _message(prefix[1], ctx)))
      continue
    with pytest.raises((ValueError, FileNotFoundError)) as info:
      fn(ctx)
    rows.append((entry, desc, type(info.value).__name__,
                 _message(info.value, ctx)))
  # Nothing above reached a jitted solver or baseline step.
  assert [f._cache_size() for f in jitted] == before
  for entry, desc, fn in WARNINGS:
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      fn(ctx)
    assert caught, desc
    rows.append((entry, desc, caught[0].category.__name__,
                 _message(caught[0].message, ctx)))
  for _, desc, _, message in rows:
    assert len(message) > 20, (desc, message)
  text = _render(rows)
  if os.environ.get("BLINDINV_WRITE_ERRORS_MD"):
    DOC.write_text(text)
  assert DOC.exists() and DOC.read_text() == text, (
      "docs/errors.md is out of date; regenerate it with "
      "BLINDINV_WRITE_ERRORS_MD=1 pytest tests/test_errors.py")
