"""What a user reads after a command: a prior's report, a solve's summary.

* :func:`prior_report`: can this prior draw images like mine? The
  representation error (PSNR/SSIM of :func:`blindinv_jax.project.project` on
  held-out images), its spread, the worst images, and a one-line verdict.
* :func:`score_snapshots`, :func:`best_snapshot`: which snapshot of a
  training run to keep (each scored once, the best by mean PSNR).
* :func:`kernel_summary`: the size and centre of an estimated kernel.
* :func:`score_sources`: PSNR/SSIM of recovered sources against the truth.
* :func:`write_solve_outputs`: the files ``blindinv solve`` writes;
  :func:`print_solve_summary`: what it prints after them;
  :func:`prior_report_hint`: the command that summary ends with.
"""
from __future__ import annotations

import pathlib
import shlex

import jax
import numpy as np


def verdict(psnr_mean: float) -> str:
  """One line that explains a representation error (dB)."""
  return (f"recoveries cannot be much better than ~{psnr_mean:.1f} dB on "
          "images like these (the prior draws them no closer); "
          "--observations says whether that beats your observations.")


def prior_report(prior, x, *, steps: int = 1000, lr: float = 1e-2,
                 restarts: int = 1, seed: int = 0, out=None,
                 show: int = 8, observations=None, extended=None,
                 progress: bool = False) -> dict:
  """The representation error of ``prior`` on images ``x [N, H, W, C]``.

  Projects x onto the range of G; returns PSNR/SSIM (mean, std, median,
  min), the indices of the worst images and the verdict. With
  ``observations [M, H, W, C]`` (a blind solve's input), projects them too
  and adds ``"observations"``: :func:`blindinv_jax.verdict.before_solve`,
  whether this prior can be expected to beat them. With ``out`` writes
  ``samples.png`` (64 samples), ``worst.png`` (the ``show`` worst images
  above their projections) and ``report.json``. With ``extended`` (the
  prior with a range extension, :func:`blindinv_jax.extension.extend`),
  projects x onto its range too and adds ``"extended"``: the extended
  ceiling next to the plain one. ``progress``: a progress bar per
  projection of x.
  """
  import json

  from blindinv_jax import metrics, verdict as verdict_lib, viz
  from blindinv_jax.project import project
  from blindinv_jax.utils import count_callback

  def projected(p, desc):
    cb, close = (count_callback(steps, desc) if progress else (None, None))
    out = project(p, x, steps=steps, lr=lr, restarts=restarts,
                  key=jax.random.key(seed), callback=cb)[0]
    if close is not None:
      close()
    return out

  x_hat = projected(prior, "projection")
  before = None
  if observations is not None:
    before = verdict_lib.before_solve(
        verdict_lib.identity_fit_db(prior, observations, steps, seed, lr=lr,
                                    restarts=restarts),
        verdict_lib.pooled_db(x_hat, x))
  p = np.asarray(metrics.psnr(x_hat, x))
  s = np.asarray(metrics.ssim(x_hat, x))
  worst = np.argsort(p)[:show]
  rep = {"n": int(len(p)), "steps": steps, "lr": lr, "restarts": restarts,
         "psnr": metrics.summary(p), "psnr_median": float(np.median(p)),
         "psnr_min": float(p.min()), "ssim": metrics.summary(s),
         "worst": worst.tolist(), "psnr_per_image": p.round(2).tolist(),
         "verdict": verdict(float(p.mean()))}
  if before is not None:
    rep["observations"] = before
  if extended is not None:
    from blindinv_jax.extension import describe
    xe = projected(extended, "extended projection")
    pe = np.asarray(metrics.psnr(xe, x))
    rep["extended"] = {"extension": describe(extended),
                       "psnr": metrics.summary(pe),
                       "ssim": metrics.summary(np.asarray(metrics.ssim(xe,
                                                                       x))),
                       "psnr_per_image": pe.round(2).tolist()}
  if out is not None:
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    viz.save_grid(out / "samples.png", prior.generate(prior.sample_latents(
        jax.random.key(seed), 64)), ncols=8, scale=3)
    viz.save_rows(out / "worst.png",
                  [np.asarray(x)[worst], np.asarray(x_hat)[worst]],
                  ["image", "closest the\nprior draws"],
                  title=f"the {len(worst)} worst of {len(p)}: "
                  + ", ".join(f"{v:.1f}" for v in p[worst]) + " dB")
    (out / "report.json").write_text(json.dumps(rep, indent=1))
  return rep


def snapshot_files(workdir, kinds=("ema",), select=None) -> dict:
  """``{label: path}`` of a train-prior workdir's snapshots, in file-name
  order: ``ema_<step>`` for ``snapshots/prior_<step>.ckpt`` (the prior
  file: the EMA generator when the run kept one) and ``raw_<step>`` for
  ``snapshots/raw_prior_<step>.ckpt`` (an EMA run's raw generator), of the
  ``kinds`` asked for and the steps for which ``select(step)`` holds (all if
  None)."""
  files = {}
  for path in sorted(pathlib.Path(workdir, "snapshots").glob(
      "*prior_*.ckpt")):
    kind = "raw" if path.name.startswith("raw_") else "ema"
    step = int(path.stem.split("_")[-1])
    if kind in kinds and (select is None or select(step)):
      files[f"{kind}_{step}"] = path
  return files


def snapshot_path(workdir, label: str) -> pathlib.Path:
  """The file of the snapshot ``label`` (``ema_<step>`` or ``raw_<step>``)."""
  kind, step = label.split("_")
  return pathlib.Path(workdir, "snapshots", ("raw_" if kind == "raw" else "")
                      + f"prior_{int(step):07d}.ckpt")


def score_snapshots(workdir, score, *, kinds=("ema",), select=None,
                    scores=None, on_score=None) -> dict:
  """Scores the snapshots of a train-prior workdir (:func:`snapshot_files`).

  ``scores[label] = score(prior)`` for each snapshot not yet in ``scores``
  (a dict the caller may keep between runs as a cache; filled in place and
  returned). ``on_score(label, row, new)`` is called after each snapshot, in
  order (``new``: False for a row that was already in ``scores``), e.g. to
  print it or save the cache. Raises FileNotFoundError if no snapshot is
  listed.
  """
  from blindinv_jax.priors import load_prior
  files = snapshot_files(workdir, kinds, select)
  if not files:
    pattern = {("ema",): "prior_*.ckpt", ("raw",): "raw_prior_*.ckpt"}.get(
        tuple(kinds), "*prior_*.ckpt")
    raise FileNotFoundError(
        f"no snapshots/{pattern}{' of the steps asked for' if select else ''}"
        f" in {str(workdir)!r}; give a train-prior workdir.")
  scores = {} if scores is None else scores
  for label, path in files.items():
    new = label not in scores
    if new:
      scores[label] = score(load_prior(path))
    if on_score is not None:
      on_score(label, scores[label], new)
  return scores


def best_snapshot(scores: dict, *, kinds=None, key=None,
                  eligible=None) -> str:
  """The label of the best row of ``scores``: the highest ``key(row)``
  (default: the mean PSNR, ``row["psnr"][0]``) among the rows of the
  ``kinds`` asked for (all if None) for which ``eligible(row)`` holds (all
  if None); the first such row on a tie. Raises ValueError if none is."""
  key = key or (lambda row: row["psnr"][0])
  labels = [k for k, row in scores.items()
            if (kinds is None or k.split("_")[0] in kinds)
            and (eligible is None or eligible(row))]
  if not labels:
    raise ValueError("no scored snapshot is eligible.")
  return max(labels, key=lambda k: key(scores[k]))


def kernel_summary(kernel: np.ndarray, threshold: float = 0.05) -> dict:
  """Size and centre of a 2-D kernel: the bounding box of the entries above
  ``threshold`` of the largest magnitude, and the magnitude-weighted centre
  (row, column), relative to the array's centre."""
  k = np.abs(np.asarray(kernel, np.float64))
  if k.max() <= 0:
    return {"size": [0, 0], "centre_offset": [0.0, 0.0]}
  rows, cols = np.nonzero(k >= threshold * k.max())
  size = [int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)]
  r, c = np.indices(k.shape)
  centre = [float((k * r).sum() / k.sum() - (k.shape[0] - 1) / 2),
            float((k * c).sum() / k.sum() - (k.shape[1] - 1) / 2)]
  return {"size": size, "centre_offset": [round(v, 2) for v in centre]}


def truth_sources(truth) -> np.ndarray:
  """``truth`` as ``[N, S, H, W, C]`` float32 (``[N, H, W, C]``: S = 1)."""
  t = np.asarray(truth, np.float32)
  return t[:, None] if t.ndim == 4 else t


def score_sources(sources, truth) -> dict:
  """PSNR/SSIM of recovered ``sources [N, S, H, W, C]`` against ``truth``
  (same shape, or ``[N, H, W, C]`` for S = 1); for S > 1 each estimate is
  matched to its true source first (intensity-normalised)."""
  import jax.numpy as jnp

  from blindinv_jax import metrics
  est, true = jnp.asarray(sources), jnp.asarray(truth_sources(truth))
  if true.shape != est.shape:
    raise ValueError(f"--truth: shape {list(true.shape)} does not match the "
                     f"recovered sources {list(est.shape)} ([N, S, H, W, C] "
                     "or [N, H, W, C] for one source).")
  sc = metrics.score(est, true, separation=est.shape[1] > 1)
  return {"psnr": sc["psnr"], "ssim": sc["ssim"]}


def load_array(path, what: str, keys=("y", "observations"),
               mmap: bool = False) -> np.ndarray:
  """An array from ``.npy``, or ``.npz`` (one of ``keys``, or its only
  array). ``mmap``: a ``.npy`` file is memory-mapped (read where sliced)."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{what}: no file at {str(path)!r}.")
  if path.suffix not in (".npy", ".npz"):
    raise ValueError(f"{what}: {path} is not a .npy or .npz file; save the "
                     "array with numpy.save or numpy.savez.")
  try:
    data = np.load(path, allow_pickle=False,
                   mmap_mode="r" if mmap and path.suffix == ".npy" else None)
  except Exception as e:
    raise ValueError(f"{what}: {path} is not a readable {path.suffix} file of "
                     f"numbers ({type(e).__name__}); save the array with "
                     "numpy.save or numpy.savez.") from e
  if isinstance(data, np.ndarray):
    return data
  names = list(data.keys())
  for k in keys:
    if k in names:
      return data[k]
  if len(names) == 1:
    return data[names[0]]
  raise ValueError(f"{what}: {path} holds arrays {names}; name the array "
                   f"{' or '.join(repr(k) for k in keys)}.")


def prior_report_hint(spec: str, prior=None) -> str:
  """A ``blindinv prior-report`` command that runs as printed: on the
  images the prior was trained on (its checkpoint's record), or, where none
  is recorded, what to pass in words."""
  try:
    source = (getattr(prior, "meta", None) or {}).get("data", {}).get(
        "source")
  except (ValueError, AttributeError):     # no readable record
    source = None
  cmd = f"blindinv prior-report --prior {shlex.quote(str(spec))}"
  if source:
    return (f"{cmd} --data {shlex.quote(str(source))} (the test split of "
            "the data it was trained on; --data also takes a folder of your "
            "own images)")
  return (f"run {cmd} with --data naming held-out images like your sources: "
          "'folder:' followed by the path of a folder of PNG/JPEG files, "
          "'mnist5k', or 'tfds:' followed by a dataset name")


#: The most observations ``figure.png`` shows.
FIGURE_MAX = 12


def write_solve_outputs(out, res, y, truth, record: dict,
                        prior=None) -> dict:
  """Writes a solve's files to ``out``: ``sources.npy [N, S, H, W, C]``,
  ``reconstruction.npy``, ``surrogate_params.msgpack``, for a linear conv
  surrogate ``effective_kernel.npy`` and ``kernel.png``, ``history.json``
  (``record`` plus the summary and the loss history) and ``figure.png``
  (up to :data:`FIGURE_MAX` observations, with ``truth`` under the
  recoveries; its title says when it shows fewer than were solved).
  Returns the summary: the data loss per observation, the kernel, the blind signal (``"signal"``:
  :func:`blindinv_jax.verdict.solve_signal`; with ``prior`` it projects
  y), and with ``truth`` the scores
  of the recovery and of the observations against it."""
  import json

  import jax
  import numpy as np
  from flax import serialization

  from blindinv_jax import verdict as verdict_lib, viz
  from blindinv_jax.models.surrogates import (
    LinearConvSurrogate,
    effective_kernel,
    learned_mask,
  )
  np.save(out / "sources.npy", np.asarray(res.sources))
  np.save(out / "reconstruction.npy", np.asarray(res.reconstruction))
  (out / "surrogate_params.msgpack").write_bytes(
      serialization.msgpack_serialize(serialization.to_state_dict(
          jax.device_get(res.surrogate_params))))
  summary = {"data_loss_per_observation": np.mean(np.abs(
      np.asarray(res.reconstruction) - y), axis=tuple(range(1, np.ndim(y)))
  ).round(5).tolist()}
  if isinstance(res.surrogate, LinearConvSurrogate):
    kernel = np.asarray(effective_kernel(res.surrogate_params))
    np.save(out / "effective_kernel.npy", kernel)
    viz.save_kernels(out / "kernel.png", [kernel[:, :, 0, 0]],
                     ["estimated kernel"],
                     title=f"{kernel.shape[0]}x{kernel.shape[1]}, the learned "
                     "surrogate's effective kernel")
    summary["kernel"] = kernel_summary(kernel[:, :, 0, 0])
  from blindinv_jax.extension import range_part
  summary["signal"] = verdict_lib.solve_signal(y, *range_part(res, prior),
                                               prior)
  if getattr(res, "recentred", None):
    summary["recentred"] = res.recentred
  if truth is not None:
    summary["truth"] = score_sources(res.sources, truth)
    summary["observation_psnr"] = verdict_lib.observation_psnr(y, truth)
  hist = {k: np.asarray(v).tolist() for k, v in res.history.items()}
  (out / "history.json").write_text(json.dumps(
      {**record, "summary": summary, "history": hist}, indent=1))
  if "gain" in res.surrogate_params.get("params", {}):      # a mask family
    gain = np.asarray(learned_mask(res.surrogate_params))
    np.save(out / "learned_mask.npy", gain)
    viz.save_kernels(out / "mask.png", [gain[:, :, 0]], ["learned mask"],
                     title="the learned per-pixel gain (0: lost, 1: seen)")
  k, s = min(len(y), FIGURE_MAX), res.sources.shape[1]
  rows, labels = [], []
  if np.ndim(y) == 4:                     # flat measurements are not drawn
    rows = [y[:k], np.asarray(res.reconstruction[:k])]
    labels = ["observed", "estimated\ncorruption"]
  for i in range(s):
    rows.append(np.asarray(res.sources[:k, i]))
    labels.append("recovered" + (f"\nsource {i + 1}" if s > 1 else ""))
  if truth is not None:                   # the same order (S > 1: unmatched)
    t = truth_sources(truth)
    rows += [t[:k, i] for i in range(s)]
    labels += ["original" + (f"\nsource {i + 1}" if s > 1 else "")
               for i in range(s)]
  rows = [r if r.shape[-1] in (1, 3) else r[..., :1] for r in rows]
  viz.save_rows(out / "figure.png", rows, labels, title=(
      f"the first {k} of {len(y)} observations (all of them in sources.npy)"
      if k < len(y) else ""))
  return summary


def print_solve_summary(summary: dict, out, prior_spec, prior=None) -> None:
  """What ``blindinv solve`` found (:func:`write_solve_outputs`' summary),
  in a few lines: the fit, the kernel, the blind signal, the scores against
  ``--truth`` beside the observations', and how to check the prior."""
  loss = np.asarray(summary["data_loss_per_observation"])
  print(f"data loss |F_hat(x) - y| per pixel: mean {loss.mean():.4f}, worst "
        f"{loss.max():.4f} (observation {int(loss.argmax())})")
  if "kernel" in summary:
    k = summary["kernel"]
    print(f"estimated kernel: {k['size'][0]}x{k['size'][1]} (entries above 5% "
          f"of its peak), centre offset {k['centre_offset']} pixels: "
          "kernel.png")
  if summary.get("recentred"):
    from blindinv_jax.recentre import describe
    print(describe(summary["recentred"]))
  print(summary["signal"]["message"])
  if "truth" in summary:
    t, o = summary["truth"], summary["observation_psnr"]
    print(f"against --truth: PSNR {t['psnr'][0]:.2f} ± {t['psnr'][1]:.2f} dB, "
          f"SSIM {t['ssim'][0]:.3f}" + ("" if o is None else
          f" (the observations: {o[0]:.2f} ± {o[1]:.2f} dB)"))
  print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}")
  print("can the prior draw images like these? " +
        prior_report_hint(prior_spec, prior))


def rank_snapshots(workdir, x, out, *, steps: int, split: str) -> None:
  """``blindinv prior-report --snapshots``: scores every snapshot of the
  train-prior ``workdir`` on images ``x [N, H, W, C]`` (prints each),
  writes ``out/snapshots.json`` and names the best."""
  import json
  name = lambda label: snapshot_path(workdir, label).name
  try:
    scores = score_snapshots(
        workdir, lambda p: prior_report(p, x, steps=steps)["psnr"],
        on_score=lambda label, psnr, new: print(
            f"{name(label)}: PSNR {psnr[0]:.2f} ± {psnr[1]:.2f} dB",
            flush=True))
  except FileNotFoundError as e:
    raise FileNotFoundError(f"--snapshots: {e}") from None
  best = best_snapshot(scores, key=lambda psnr: psnr[0])
  (pathlib.Path(out) / "snapshots.json").write_text(json.dumps(
      {"split": split, "n": len(x),
       "psnr": {name(k): v for k, v in scores.items()}, "best": name(best)},
      indent=1))
  print(f"best on {split}: {snapshot_path(workdir, best)}"
        f" ({scores[best][0]:.2f} dB); use it as --prior")
