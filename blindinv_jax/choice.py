"""What ``surrogate="auto"`` chose and why: :class:`SurrogateChoice`
(:mod:`blindinv_jax.auto` makes it; ``SolveResult.choice`` holds it)."""
from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

#: A richer family must cut the held-out error by at least MIN_GAIN
#: (relative), with a paired t statistic over held-out pixels >= T_CRIT
#: (docs/results.md#choosing-the-surrogate-automatically).
MIN_GAIN = 0.01
T_CRIT = 2.0


@dataclasses.dataclass(frozen=True)
class SurrogateChoice:
  """What ``"auto"`` chose and why.

  family, num_sources: the winner. candidates: ``(family, S, held-out L1,
  fit L1)`` per candidate (mean absolute error per observation entry, on
  the held-out and on the fitted pixels). duels: ``(current, challenger,
  relative gain, paired t, won)`` for each richer family that challenged
  the current one at the chosen S; the gain is ``1 - challenger's held-out
  L1 / current's`` and both it and t are positive when the challenger's
  error is lower (:meth:`convention`). pixel_errors: per candidate, its mean
  error on each held-out pixel, or each held-out entry with
  ``heldout="entries"`` (``P`` values, the order of the mask).
  entry_candidates, entry_pixel_errors: the same for the winner and the
  per-pixel families screened again on held-out entries, whose duels (the
  last ones) need a cut of ``per_pixel_gain``. The rest is how it was
  screened.
  """
  family: str
  num_sources: int
  candidates: Tuple[Tuple[str, int, float, float], ...]
  duels: Tuple[Tuple[str, str, float, float, bool], ...]
  min_gain: float
  t_crit: float
  fraction: float
  screen_n: int
  screen_steps: int
  pixel_errors: Tuple[Tuple[float, ...], ...] = ()
  entry_candidates: Tuple[Tuple[str, int, float, float], ...] = ()
  entry_pixel_errors: Tuple[Tuple[float, ...], ...] = ()
  per_pixel_gain: Optional[float] = None

  def table(self) -> str:
    """The candidates and the duels as markdown tables, the winner in
    bold, and the duels' sign convention under them."""
    rows = ["| surrogate | S | held-out L1 | fit L1 |", "|---|---|---|---|"]
    for fam, s, held, fit in self.candidates:
      mark = "**" if (fam, s) == (self.family, self.num_sources) else ""
      rows.append(f"| {mark}{fam}{mark} | {s} | {held:.5f} | {fit:.5f} |")
    if self.entry_candidates:
      rows += ["", "held out in each observation's own entries (the "
               "per-pixel duel):", "", "| surrogate | S | held-out L1 | "
               "fit L1 |", "|---|---|---|---|"]
      rows += [f"| {fam} | {s} | {held:.5f} | {fit:.5f} |"
               for fam, s, held, fit in self.entry_candidates]
    if self.duels:
      rows += ["", "| current | challenger | held-out L1 cut | paired t | "
               "replaces |", "|---|---|---|---|---|"]
      rows += [f"| {a} | {b} | {g:+.1%} | {t:.2f} | {'yes' if w else 'no'} |"
               for a, b, g, t, w in self.duels]
      rows += ["", self.convention()]
    return "\n".join(rows)

  def convention(self) -> str:
    """How to read a duel's cut and t (the table's and
    :meth:`duel_lines`')."""
    return (f"cut = 1 - challenger's held-out L1 / current's: positive when "
            f"the challenger's error is lower, as is the paired t over the "
            f"held-out pixels; the challenger replaces the current family "
            f"when cut >= {self.min_gain:.0%} and t >= {self.t_crit:g}" +
            ("." if self.per_pixel_gain is None else
             f" (a per-pixel family, on held-out entries: cut >= "
             f"{self.per_pixel_gain:.0%})."))

  def duel_lines(self, short: bool = False) -> Tuple[str, ...]:
    """Each duel in words: ``"mixing vs conv: held-out L1 3.2% lower (cut
    +3.2%), paired t 4.10 -> replaces conv (needs ...)"``; ``short``:
    ``"mixing vs conv: cut +3.2%, t 4.1"``. The cut is the challenger's
    relative cut of the held-out L1, as in :meth:`table` (positive: its
    error is lower)."""
    if short:
      return tuple(f"{b} vs {a}: cut {g:+.1%}, t {t:.1f}"
                   for a, b, g, t, _ in self.duels)
    late = max(0, len(self.entry_candidates) - 1)   # the per-pixel duels
    first = len(self.duels) - late
    return tuple(
        f"{b} vs {a}: held-out L1 {abs(g):.1%} "
        f"{'lower' if g >= 0 else 'higher'} (cut {g:+.1%}), paired t "
        f"{t:.2f} -> {'replaces' if w else 'keeps'} {a} (needs a cut >= "
        f"{(self.min_gain if i < first else self.per_pixel_gain):.0%} and "
        f"t >= {self.t_crit:g}" + ("" if i < first else
                                   ", on held-out entries") + ")"
        for i, (a, b, g, t, w) in enumerate(self.duels))

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict) -> "SurrogateChoice":
    names = {f.name for f in dataclasses.fields(cls)}
    d = {k: v for k, v in d.items() if k in names}
    d.setdefault("duels", ())
    d.setdefault("min_gain", MIN_GAIN)
    d.setdefault("t_crit", T_CRIT)
    return cls(**{**d, "candidates": tuple(tuple(c) for c in d["candidates"]),
                  "duels": tuple(tuple(c) for c in d["duels"]),
                  "pixel_errors": tuple(tuple(c) for c in
                                        d.get("pixel_errors", ())),
                  "entry_candidates": tuple(tuple(c) for c in
                                            d.get("entry_candidates", ())),
                  "entry_pixel_errors": tuple(
                      tuple(c) for c in d.get("entry_pixel_errors", ()))})
