"""``surrogate="auto"`` and ``num_sources="auto"``: the task chosen from the data.

The solver does not need to be told which process made the observations.
Each candidate (a surrogate family of
:data:`blindinv_jax.models.surrogates.FAMILIES`, and a number of sources S)
runs a short screening solve on the first ``screen_n`` observations with a
fixed random set of pixels held out, and is scored by its L1 error on those
pixels, which it never saw:

* the held-out pixels are the same ``fraction`` of every observation's
  ``H x W`` grid, drawn from the solve's key (same key, same pixels);
* the fit never sees them: the screening surrogate's output and the
  observations are both zeroed there (:class:`HeldOutSurrogate`), so their
  terms of the data loss are 0 and carry no gradient;
* S (for ``num_sources="auto"``) by an elbow: sources are added while each
  one cuts the best held-out error by at least ``SOURCE_GAIN`` (10%). Extra
  sources keep lowering even the held-out error a little (they also fit
  what the prior cannot draw), so "lowest error" would overcount S;
* then the family: the simplest at that S (the order of ``FAMILIES``:
  linear conv, per-pixel mixing, conv + ReLU) whose held-out error is within
  ``tolerance`` (relative, 5%) of the best. A richer family always fits a
  little better; it must earn its place by more than that.

:func:`choose` returns a :class:`SurrogateChoice` with every candidate's
held-out error; :func:`blindinv_jax.solver.solve` then runs the full solve
with the winner and keeps the choice in ``SolveResult.choice``.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax.models.surrogates import FAMILIES, make_surrogate

#: Screening defaults: observations used, share of pixels held out, and the
#: relative margin a richer candidate must beat a simpler one by.
SCREEN_N = 16
FRACTION = 0.1
TOLERANCE = 0.05
MAX_SOURCES = 4
#: num_sources="auto" adds a source only while it cuts the best held-out
#: error by at least this much (relative); docs/results.md#choosing-s.
SOURCE_GAIN = 0.10


def heldout_mask(seed: int, height: int, width: int,
                 fraction: float = FRACTION) -> jax.Array:
  """``[H, W, 1]`` float, 1 on the ``round(fraction * H * W)`` held-out
  pixels (at least one), drawn from ``seed``."""
  count = max(1, int(round(fraction * height * width)))
  idx = jax.random.permutation(jax.random.key(seed), height * width)[:count]
  return jnp.zeros(height * width).at[idx].set(1.0).reshape(height, width, 1)


class HeldOutSurrogate(nn.Module):
  """A surrogate whose output is 0 on the held-out pixels (its parameters
  are ``inner``'s, under the name ``inner``)."""
  inner: nn.Module
  seed: int
  fraction: float = FRACTION

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    out = self.inner(x)
    mask = heldout_mask(self.seed, out.shape[-3], out.shape[-2],
                        self.fraction)
    return out * (1.0 - mask)


@dataclasses.dataclass(frozen=True)
class SurrogateChoice:
  """What ``"auto"`` chose and why.

  family, num_sources: the winner. candidates: ``(family, S, held-out L1,
  fit L1)`` per candidate (mean absolute error per observation entry, on
  the held-out and on the fitted pixels). The rest is how it was screened.
  """
  family: str
  num_sources: int
  candidates: Tuple[Tuple[str, int, float, float], ...]
  tolerance: float
  fraction: float
  screen_n: int
  screen_steps: int

  def table(self) -> str:
    """The candidates as a markdown table, the winner in bold."""
    rows = ["| surrogate | S | held-out L1 | fit L1 |", "|---|---|---|---|"]
    for fam, s, held, fit in self.candidates:
      mark = "**" if (fam, s) == (self.family, self.num_sources) else ""
      rows.append(f"| {mark}{fam}{mark} | {s} | {held:.5f} | {fit:.5f} |")
    return "\n".join(rows)

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict) -> "SurrogateChoice":
    return cls(**{**d, "candidates": tuple(tuple(c) for c in
                                           d["candidates"])})


CHOICE_NAME = "surrogate_choice.json"


def choose_once(checkpoint_dir, **kw) -> SurrogateChoice:
  """:func:`choose`, remembered in ``checkpoint_dir/surrogate_choice.json``:
  a resumed solve continues with the candidate it chose at its start (even
  if, say, ``outer_steps`` grew and would screen differently). Without a
  ``checkpoint_dir`` it is :func:`choose`."""
  import json
  import pathlib
  if checkpoint_dir is None:
    return choose(**kw)
  path = pathlib.Path(checkpoint_dir) / CHOICE_NAME
  if path.is_file():
    return SurrogateChoice.from_dict(json.loads(path.read_text()))
  choice = choose(**kw)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(choice.to_dict(), indent=1))
  return choice


def pick(candidates, tolerance: float = TOLERANCE,
         source_gain: float = SOURCE_GAIN) -> Tuple[str, int]:
  """The winner among ``candidates`` (as in :class:`SurrogateChoice`,
  ordered simplest first; a non-finite error counts as infinite).

  S first, by an elbow: the smallest S whose best held-out error the next S
  improves by less than ``source_gain`` (relative). Then the family: the
  simplest one at that S within ``tolerance`` of that S's best.
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
  best = by_s[s]             # inf if every screen diverged: then the simplest
  fam = next(c[0] for c, h in zip(candidates, held)
             if c[1] == s and h <= best * (1.0 + tolerance))
  return fam, s


def masked_mean(err: jax.Array, mask: jax.Array) -> float:
  """Mean of ``err [N, H, W, C]`` over the pixels where ``mask [H, W, 1]``
  is 1 (per observation entry)."""
  return float(jnp.sum(err * mask) /
               (jnp.sum(mask) * err.shape[0] * err.shape[-1]))


def families_for(surrogate) -> Tuple[str, ...]:
  """The families an "auto" choice screens: all of :data:`FAMILIES` for
  ``"auto"``, else the one named (S alone is then chosen). A module is
  refused: its input channels fix S."""
  if isinstance(surrogate, str) and surrogate == "auto":
    return tuple(FAMILIES)
  if isinstance(surrogate, str):
    return (surrogate,)
  raise ValueError("num_sources='auto' needs a named surrogate family "
                   f"({list(FAMILIES)} or 'auto'), not a module: a module's "
                   "input channels fix S.")


def choose(y, prior, *, num_sources=1, families: Sequence[str] = tuple(
               FAMILIES), max_sources: int = MAX_SOURCES, config=None,
           key: Optional[jax.Array] = None, screen_n: int = SCREEN_N,
           screen_steps: Optional[int] = None, fraction: float = FRACTION,
           tolerance: float = TOLERANCE, on_candidate=None) -> SurrogateChoice:
  """Screens every (family, S) candidate on held-out pixels of ``y [N, H,
  W, C_obs]``; ``num_sources``: an int, or ``"auto"`` for 1..max_sources.

  Each screening solve is ``config`` (default TUNED) with one restart and
  ``screen_steps`` outer steps (default a quarter of ``config``'s, at least
  5 and at most all), on the first ``screen_n`` observations, with key ``key``.
  ``on_candidate(row)`` is called after each with its ``(family, S,
  held-out L1, fit L1)``.
  """
  from blindinv_jax import solver
  from blindinv_jax.algorithm import stack_sources
  config = solver.TUNED if config is None else config
  key = jax.random.key(0) if key is None else key
  bad = [f for f in families if f not in FAMILIES]
  if bad or not families:
    raise ValueError(f"surrogate='auto' chooses among {list(FAMILIES)}; got "
                     f"families={list(families)}.")
  if num_sources == "auto":
    solver.check_positive_int("max_sources", max_sources)
    sources = range(1, max_sources + 1)
  else:
    solver.check_positive_int("num_sources", num_sources)
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
  mask = heldout_mask(seed, h, w, fraction)
  rows = []
  for s in sources:
    for fam in families:
      inner = make_surrogate(fam, ys.shape[-1])
      with warnings.catch_warnings():   # the full solve warns, once
        warnings.simplefilter("ignore")
        res = solver.solve(ys * (1.0 - mask), prior, num_sources=s,
                           surrogate=HeldOutSurrogate(inner, seed, fraction),
                           config=cfg, key=key)
      params = {"params": res.surrogate_params["params"]["inner"]}
      err = jnp.abs(inner.apply(params, stack_sources(res.sources)) - ys)
      rows.append((fam, s, masked_mean(err, mask),
                   masked_mean(err, 1.0 - mask)))
      if on_candidate is not None:
        on_candidate(rows[-1])
  fam, s = pick(rows, tolerance)
  return SurrogateChoice(family=fam, num_sources=s, candidates=tuple(rows),
                         tolerance=tolerance, fraction=fraction,
                         screen_n=int(ys.shape[0]), screen_steps=steps)
