"""``surrogate="auto"`` and ``num_sources="auto"``: the task chosen from the data.

The solver does not need to be told which process made the observations.
Each candidate (a surrogate family of
:data:`blindinv_jax.models.surrogates.FAMILIES`, and a number of sources S)
runs a short screening solve on the first ``screen_n`` observations with a
fixed random set of pixels held out, and is scored by its L1 error on those
pixels, which it never saw:

* the held-out pixels are the same ``fraction`` of every observation's
  ``H x W`` grid, drawn from the solve's key (same key, same pixels);
  ``heldout="entries"`` holds out each observation's own pixels instead
  (held-out measurements). A per-pixel family (``"mask"``) cannot be
  scored on pixels held out everywhere (its gain there is never learned),
  so by default it duels the winner afterwards, both screened again on
  held-out entries, and needs a larger cut (``PER_PIXEL_GAIN``) to replace
  it (docs/results.md#held-out-entries-and-the-mask-family);
* the fit never sees them: the screening surrogate's output and the
  observations are both zeroed there (:class:`HeldOutSurrogate`), so their
  terms of the data loss are 0 and carry no gradient;
* S (for ``num_sources="auto"``) by an elbow: sources are added while each
  one cuts the best held-out error by at least ``SOURCE_GAIN`` (10%). Extra
  sources keep lowering even the held-out error a little (they also fit
  what the prior cannot draw), so "lowest error" would overcount S;
* then the family at that S, simplest first (the order of ``FAMILIES``:
  linear conv, the same on the scene continued past the frame, per-pixel
  mixing, conv + ReLU, then the per-pixel mask): a richer family replaces the
  current one only if it cuts the held-out error by at least ``min_gain``
  (1%) *and* the cut is consistent over the held-out pixels (a paired t
  statistic of at least ``t_crit``, 2, over the per-pixel errors). A richer
  family always fits a little better by chance on some pixels; it must earn
  its place by more than the spread of that chance.

:func:`choose` returns a :class:`SurrogateChoice` with every candidate's
held-out error; :func:`blindinv_jax.solver.solve` then runs the full solve
with the winner and keeps the choice in ``SolveResult.choice``.
"""
from __future__ import annotations

import pathlib
import warnings
from typing import Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax import algorithm, resume, runner
from blindinv_jax.algorithm import stack_sources
from blindinv_jax.choice import MIN_GAIN, T_CRIT, SurrogateChoice
from blindinv_jax.config import TUNED, as_identity, for_prior
from blindinv_jax.models.surrogates import (
  BORDER_FAMILIES,
  FAMILIES,
  make_surrogate,
)
from blindinv_jax.validation import check_positive_int

#: Screening defaults: observations used, share of pixels held out.
SCREEN_N = 16
FRACTION = 0.1
MAX_SOURCES = 4
#: num_sources="auto" adds a source only while it cuts the best held-out
#: error by at least this much (relative); docs/results.md#choosing-s.
SOURCE_GAIN = 0.10


#: What ``choose(heldout=...)`` holds out: the same pixels of every
#: observation (the default), or each observation's own.
HELDOUT = ("pixels", "entries")
#: Per-pixel families: screened with ``heldout="entries"``, else dueling
#: the winner on held-out entries after the screening (:func:`choose`).
PER_PIXEL = ("mask",)
#: The cut of the held-out-entries error a per-pixel family needs to replace
#: the winner (it has two parameters per pixel, and fits what the prior
#: cannot draw a little better on any task); chosen on val,
#: docs/results.md#held-out-entries-and-the-mask-family.
PER_PIXEL_GAIN = 0.25


def heldout_mask(seed: int, height: int, width: int,
                 fraction: float = FRACTION, n: Optional[int] = None
                 ) -> jax.Array:
  """``[H, W, 1]`` float, 1 on the ``round(fraction * H * W)`` held-out
  pixels (at least one), drawn from ``seed``; with ``n``, ``[n, H, W, 1]``:
  observation ``j``'s own pixels, drawn from ``fold_in(key(seed), j)``."""
  count = max(1, int(round(fraction * height * width)))

  def draw(key):
    idx = jax.random.permutation(key, height * width)[:count]
    return jnp.zeros(height * width).at[idx].set(1.0)

  if n is None:
    return draw(jax.random.key(seed)).reshape(height, width, 1)
  keys = jax.vmap(lambda j: jax.random.fold_in(jax.random.key(seed), j))(
      jnp.arange(n))
  return jax.vmap(draw)(keys).reshape(n, height, width, 1)


class HeldOutSurrogate(nn.Module):
  """A surrogate whose output is 0 on the held-out pixels (its parameters
  are ``inner``'s, under the name ``inner``); ``per_observation``: each
  observation's own (the input's batch is the screened observations)."""
  inner: nn.Module
  seed: int
  fraction: float = FRACTION
  per_observation: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    out = self.inner(x)
    mask = heldout_mask(self.seed, out.shape[-3], out.shape[-2],
                        self.fraction,
                        out.shape[0] if self.per_observation else None)
    return out * (1.0 - mask)


CHOICE_NAME = "surrogate_choice.json"


def choice_identity(y, prior, num_sources, families, config, key,
                    **screening) -> dict:
  """What an "auto" choice depends on (JSON): the observations, the prior,
  S (or "auto"), the families, the key, the screening settings and the
  config (less ``outer_steps``, which a resumed solve may grow)."""
  from blindinv_jax import __version__
  cfg = as_identity(TUNED if config is None else config)
  cfg.pop("outer_steps")
  return {"observations": resume.fingerprint(np.asarray(y, np.float32)),
          "prior": resume.fingerprint(*jax.tree_util.tree_leaves(prior)),
          "num_sources": num_sources, "families": list(families),
          "key": resume.fingerprint(jax.random.key_data(
              jax.random.key(0) if key is None else key)),
          "config": cfg, "screening": screening,
          "package_version": __version__}


def choose_once(checkpoint_dir, **kw) -> SurrogateChoice:
  """:func:`choose`, remembered in ``checkpoint_dir/surrogate_choice.json``
  with the run's identity (:func:`choice_identity`,
  :class:`blindinv_jax.resume.ResultCache`): a resumed solve continues with
  the candidate it chose at its start (even if, say, ``outer_steps`` grew
  and would screen differently); a choice of another run is refused,
  naming what differs. Without a ``checkpoint_dir`` it is :func:`choose`."""
  if checkpoint_dir is None:
    return choose(**kw)
  main = {k: kw.get(k) for k in ("y", "prior", "num_sources", "config",
                                  "key")}
  screening = {k: v for k, v in kw.items() if k not in main and
               k not in ("families", "on_candidate")}
  path = pathlib.Path(checkpoint_dir) / CHOICE_NAME
  cache = resume.ResultCache(
      path, choice_identity(families=kw.get("families", tuple(FAMILIES)),
                            **main, **screening),
      ignore=("package_version",),
      note=lambda text: warnings.warn(text, UserWarning, stacklevel=3),
      message=lambda d: (
          f"{path} is the surrogate choice of a different solve: {d}. Resume "
          "with the same inputs, or write to a new output folder."))
  if cache.rows:
    return SurrogateChoice.from_dict(cache.rows)
  choice = choose(**kw)
  cache.rows.update(resume.jsonable(choice.to_dict()))
  cache.save()
  return choice


def paired_t(a, b) -> float:
  """The paired t statistic of ``a - b`` (per held-out pixel): positive
  when ``b`` is lower; ``inf`` if they differ by a constant, 0 if equal."""
  d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
  if d.size < 2 or not np.all(np.isfinite(d)):
    return 0.0
  sd = d.std(ddof=1)
  if sd == 0:
    return float(np.sign(d.mean()) * np.inf) if d.mean() else 0.0
  return float(d.mean() / (sd / np.sqrt(d.size)))


def pick(candidates, pixel_errors, min_gain: float = MIN_GAIN,
         t_crit: float = T_CRIT, source_gain: float = SOURCE_GAIN):
  """The winner among ``candidates`` (as in :class:`SurrogateChoice`,
  ordered simplest first; a non-finite error counts as infinite), with
  ``pixel_errors`` the per-held-out-pixel errors of each.

  S first, by an elbow: the smallest S whose best held-out error the next S
  improves by less than ``source_gain`` (relative). Then the family at that
  S: simplest first, a richer one replaces the current one if it cuts the
  held-out error by at least ``min_gain`` with a paired t of at least
  ``t_crit``. Returns ``(family, S, duels)``.
  """
  held = [c[2] if np.isfinite(c[2]) else np.inf for c in candidates]
  by_s = {}
  for c, h in zip(candidates, held):
    by_s[c[1]] = min(by_s.get(c[1], np.inf), h)
  sources = sorted(by_s)
  s = sources[-1]
  for a, b in zip(sources, sources[1:]):
    if not by_s[b] < by_s[a] * (1.0 - source_gain):
      s = a
      break
  at_s = [i for i, c in enumerate(candidates) if c[1] == s]
  rows = [(c[0], c[1], h) for c, h in zip(candidates, held)]
  cur, duels = at_s[0], []
  for i in at_s[1:]:
    duels.append(_duel(rows, pixel_errors, cur, i, min_gain, t_crit))
    if duels[-1][-1]:
      cur = i
  return candidates[cur][0], s, tuple(duels)


def masked_mean(err: jax.Array, mask: jax.Array) -> float:
  """Mean of ``err [N, H, W, C]`` over the pixels where ``mask [H, W, 1]``
  (or ``[N, H, W, 1]``) is 1 (per observation entry)."""
  mask = jnp.broadcast_to(mask, err.shape[:-1] + (1,))
  return float(jnp.sum(err * mask) / (jnp.sum(mask) * err.shape[-1]))


def pixel_means(err: jax.Array, mask: jax.Array) -> Tuple[float, ...]:
  """The units of the paired t: ``err [N, H, W, C]`` averaged over
  observations and channels on each pixel where ``mask [H, W, 1]`` is 1,
  or, for ``mask [N, H, W, 1]``, over channels on each held-out entry; in
  row-major order."""
  if mask.ndim == 4:
    per_entry = np.asarray(jnp.mean(err, axis=3))
    return tuple(float(v) for v in per_entry[np.asarray(mask[..., 0]) > 0])
  per_pixel = np.asarray(jnp.mean(err, axis=(0, 3)))
  return tuple(float(v) for v in per_pixel[np.asarray(mask[..., 0]) > 0])


def families_for(surrogate) -> Tuple[str, ...]:
  """The families an "auto" choice screens: all of :data:`FAMILIES` and
  :data:`PER_PIXEL` for ``"auto"``, else the one named (S alone is then
  chosen). A module is refused: its input channels fix S."""
  if isinstance(surrogate, str) and surrogate == "auto":
    return tuple(FAMILIES) + PER_PIXEL
  if isinstance(surrogate, str):
    return (surrogate,)
  raise ValueError("num_sources='auto' needs a named surrogate family "
                   f"({list(FAMILIES)} or 'auto'), not a module: a module's "
                   "input channels fix S.")


def screen(y, prior, surrogate: nn.Module, num_sources: int, config, key):
  """One screening solve: Algorithm 1 through :mod:`blindinv_jax.runner`
  (one restart, no checkpoint). Returns the best restart's ``(sources [N,
  S, H, W, C], theta)``; a run that stops on a NaN returns its last finite
  state, which then scores poorly."""
  state = runner.jitted(algorithm.init_state,
                        ("surrogate", "config", "num_sources"))(
      key, y, prior, surrogate, config, num_sources)
  with warnings.catch_warnings():       # the full solve warns, once
    warnings.simplefilter("ignore")
    out = runner.run(algorithm.outer_step, state, y, prior=prior,
                     steps=config.outer_steps,
                     settings=runner.Settings.of(config),
                     static={"surrogate": surrogate, "config": config},
                     unit="outer step")
  x, _, theta, _, _ = runner.jitted(algorithm.final_estimates,
                                    ("surrogate",))(out.state, y, prior,
                                                    surrogate)
  return x, theta


def choose(y, prior, *, num_sources=1, families: Sequence[str] = tuple(
               FAMILIES), max_sources: int = MAX_SOURCES, config=None,
           key: Optional[jax.Array] = None, screen_n: int = SCREEN_N,
           screen_steps: Optional[int] = None, fraction: float = FRACTION,
           min_gain: float = MIN_GAIN, t_crit: float = T_CRIT,
           on_candidate=None, kernel_size: Optional[int] = None,
           heldout: str = "pixels",
           per_pixel_gain: float = PER_PIXEL_GAIN) -> SurrogateChoice:
  """Screens every (family, S) candidate on held-out pixels of ``y [N, H,
  W, C_obs]``; ``num_sources``: an int, or ``"auto"`` for 1..max_sources.

  Each screening solve is ``config`` (default TUNED) with one restart and
  ``screen_steps`` outer steps (default a quarter of ``config``'s, at least
  5 and at most all), on the first ``screen_n`` observations, with key ``key``.
  ``on_candidate(row)`` is called after each with its ``(family, S,
  held-out L1, fit L1)``. ``kernel_size``: the conv families' kernel
  (:func:`blindinv_jax.models.surrogates.make_surrogate`; None: 9x9).
  ``heldout``: ``"pixels"`` (the same pixels of every observation) or
  ``"entries"`` (each observation's own). A per-pixel family
  (:data:`PER_PIXEL`, ``"mask"``) cannot be scored on pixels held out
  everywhere: with ``"pixels"`` it instead duels the winner afterwards on
  held-out entries (both screened again, at the winner's S, on the prior's
  own grid only) and replaces it if it cuts that error by at least
  ``per_pixel_gain`` with a paired t of at least ``t_crit``; with
  ``"entries"`` it is screened like the others.
  ``families`` may also name the border families (``conv_reflect``,
  ``conv_circular``), which ``surrogate="auto"`` does not screen.
  """
  config = for_prior(TUNED if config is None else config, prior)
  key = jax.random.key(0) if key is None else key
  if heldout not in HELDOUT:
    raise ValueError(f"heldout must be one of {list(HELDOUT)}, got "
                     f"{heldout!r}.")
  known = list(FAMILIES) + list(BORDER_FAMILIES) + list(PER_PIXEL)
  bad = [f for f in families if f not in known]
  if bad or not families or all(f in PER_PIXEL for f in families):
    raise ValueError(f"surrogate='auto' chooses among {known} (at least one "
                     f"of them not per-pixel); got families="
                     f"{list(families)}.")
  if num_sources == "auto":
    check_positive_int("max_sources", max_sources)
    sources = range(1, max_sources + 1)
  else:
    check_positive_int("num_sources", num_sources)
    sources = (num_sources,)
  if not 0 < fraction < 1:
    raise ValueError(f"fraction (the held-out share of pixels) must be in "
                     f"(0, 1), got {fraction!r}.")
  steps = screen_steps or min(config.outer_steps,
                               max(5, config.outer_steps // 4))
  cfg = config.replace(outer_steps=steps, restarts=1, batch_size=None)
  ys = jnp.asarray(np.asarray(y, np.float32)[:screen_n])
  h, w = ys.shape[1:3]
  seed = int(jax.random.randint(jax.random.fold_in(key, 0x5eed), (), 0,
                                2**31 - 1))
  per_obs = heldout == "entries"
  mask = heldout_mask(seed, h, w, fraction, ys.shape[0] if per_obs else None)
  screened = [f for f in families if per_obs or f not in PER_PIXEL]
  one = dict(prior=prior, cfg=cfg, key=key, seed=seed, fraction=fraction,
             kernel_size=kernel_size, on_candidate=on_candidate)
  rows, pixels = [], []
  for s in sources:
    for fam in screened:
      _screen_one(ys, fam, s, mask, per_obs, rows, pixels, **one)
  fam, s, duels = pick(rows, pixels, min_gain, t_crit)
  late = [f for f in families if f not in screened]
  entry_rows, entry_pixels = [], []
  if late and ys.shape[1:3] == tuple(prior.image_shape[:2]):
    entries = heldout_mask(seed, h, w, fraction, ys.shape[0])
    told = None if on_candidate is None else (   # apart from the first screen
        lambda r: on_candidate((f"{r[0]} (held-out entries)",) + tuple(r[1:])))
    for f in [fam] + late:
      _screen_one(ys, f, s, entries, True, entry_rows, entry_pixels,
                  **{**one, "on_candidate": told})
    for i in range(1, len(entry_rows)):
      duel = _duel(entry_rows, entry_pixels, 0, i, per_pixel_gain, t_crit)
      duels += (duel,)
      if duel[-1]:
        fam = entry_rows[i][0]
        break
  return SurrogateChoice(family=fam, num_sources=s, candidates=tuple(rows),
                         duels=duels, min_gain=min_gain, t_crit=t_crit,
                         fraction=fraction, screen_n=int(ys.shape[0]),
                         screen_steps=steps, pixel_errors=tuple(pixels),
                         entry_candidates=tuple(entry_rows),
                         entry_pixel_errors=tuple(entry_pixels),
                         per_pixel_gain=per_pixel_gain if entry_rows else None)


def _screen_one(ys, fam, s, mask, per_obs, rows, pixels, *, prior, cfg, key,
                seed, fraction, kernel_size, on_candidate):
  """Screens family ``fam`` at S = ``s`` on ``ys`` with ``mask`` held out
  (``[H, W, 1]``, or ``[N, H, W, 1]`` with ``per_obs``); appends its
  ``(family, S, held-out L1, fit L1)`` to ``rows`` and its per-pixel (or
  per-entry) errors to ``pixels``."""
  inner = make_surrogate(fam, ys.shape[-1], kernel_size)
  sources, theta = screen(ys * (1.0 - mask), prior,
                          HeldOutSurrogate(inner, seed, fraction, per_obs),
                          s, cfg, key)
  err = jnp.abs(inner.apply({"params": theta["params"]["inner"]},
                            stack_sources(sources)) - ys)
  rows.append((fam, s, masked_mean(err, mask), masked_mean(err, 1.0 - mask)))
  pixels.append(pixel_means(err, mask))
  if on_candidate is not None:
    on_candidate(rows[-1])


def _duel(rows, pixel_errors, cur: int, i: int, min_gain: float,
          t_crit: float):
  """``(current, challenger, gain, t, won)``: candidate ``i`` against
  ``cur`` (indices into ``rows``), as in :func:`pick`."""
  a, b = rows[cur][2], rows[i][2]
  if not np.isfinite(a):
    won, gain, t = bool(np.isfinite(b)), np.inf, np.inf
  else:
    gain = 1.0 - b / a if a > 0 else 0.0
    t = paired_t(pixel_errors[cur], pixel_errors[i])
    won = bool(gain >= min_gain and t >= t_crit)
  return (rows[cur][0], rows[i][0], float(gain), float(t), won)
