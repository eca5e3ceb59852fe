"""The solver's configuration: :class:`SolverConfig` and its presets.

* :data:`PAPER`: the paper's schedule (section 3.1).
* :data:`TUNED`: the schedule the MNIST experiments use (chosen on the
  validation split; ``docs/design.md#defaults-and-why``).
* :data:`FAST`: :data:`TUNED` cut to 30 outer steps, a plain ``fori_loop``
  whatever the backend: ``blindinv demo`` and the quickstart notebook.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Optional, Tuple, Union

import numpy as np

from blindinv_jax.precision import check_precision
from blindinv_jax.validation import check_positive_int, check_positive_number


class DefaultAlpha(float):
  """The default perceptual weight: a float equal to 1e-4 (same hash, so the
  same config and compiled program as ``alpha=1e-4``) whose type says that
  the user did not set it, so that a prior without a discriminator can turn
  it into 0 (:func:`resolve_alpha`) where an explicit alpha is refused
  (``is_default``: how :mod:`blindinv_jax.validation` tells, without
  importing this module)."""
  __slots__ = ()
  is_default = True


#: ``SolverConfig.alpha``'s default: 1e-4, or 0 for a prior without a
#: discriminator.
DEFAULT_ALPHA = DefaultAlpha(1e-4)


#: ``SolverConfig.extension``'s kinds (:mod:`blindinv_jax.extension`).
EXTENSIONS = ("ilo", "sparse")

#: ``SolverConfig.select``: how the returned restart is chosen.
SELECT = ("fit", "centred")


@dataclasses.dataclass(frozen=True)
class SolverConfig:
  """Schedule and loss of Algorithm 1 (defaults: the paper's, section 3.1).

  Attributes:
    outer_steps: T, alternations of the two phases.
    surrogate_steps: T1, Adam steps on the surrogate per outer step.
    latent_steps: T2, Adam steps on the latents per outer step.
    surrogate_lr: Adam learning rate of the surrogate (lambda_1).
    latent_lr: Adam learning rate of the latents (lambda_2).
    latent_lr_end: if set, the latent learning rate follows a cosine decay
      from ``latent_lr`` to ``latent_lr_end`` over all ``outer_steps *
      latent_steps`` latent steps (``None``: constant, the paper's).
    alpha: weight of the perceptual loss ``sum log(1 - D(G(z)))``; by
      default 1e-4 with a prior that has a discriminator and 0 (with a
      note) with one that has none; an alpha set explicitly is used as set,
      and a positive one needs a discriminator.
    loss: data loss, ``"l1"`` (the paper's) or ``"l2"`` (squared error).
    clip: the projection P: latents are clipped to ``[-clip, clip]`` after
      every step.
    restarts: R independent initialisations solved together.
    select: which restart a solve returns: ``"fit"`` (the lowest L1 data
      loss, the paper's) or ``"centred"`` (for the linear conv families:
      the lowest L1 data loss among the restarts whose effective kernel's
      energy centroid is within ``solver.CENTRE_TOLERANCE`` (0.1) pixel as
      near its centre as the most centred one's: without a frame, a kernel
      shifted one way and sources shifted the other fit the observations
      alike, and the centred pair is the one whose sources are not moved).
    batch_size: ``None`` (all observations at once, the paper's) or B: each
      outer step is then an epoch over shuffled minibatches of B
      observations (:mod:`blindinv_jax.minibatch`). Memory grows with B, not
      N; with ``B >= N`` it is the full-batch solver.
    unroll: how the inner loops are lowered: ``None`` picks the backend's
      default (:func:`blindinv_jax.backend.default_unroll`), ``"full"``
      unrolls them completely, an int ``k`` unrolls ``k`` steps per
      iteration of a ``fori_loop`` (1: a plain loop).
    grad_pieces: the latent gradient of the N observations is computed in
      this many independent pieces (exact: each observation's gradient
      depends on its own latents only). ``None`` picks
      :func:`blindinv_jax.backend.default_grad_pieces`.
    precision: the arithmetic of the frozen generator and discriminator,
      forward and backward (:mod:`blindinv_jax.precision`): ``None`` (the
      backend's default for float32), ``"float32"``, ``"tensorfloat32"``
      or ``"bfloat16"``. Latents, optimiser states, the surrogate and the
      losses stay float32.
    extension: range extension of the latent phase
      (:mod:`blindinv_jax.extension`): ``None`` (the recoveries are
      ``G(z)``), ``"ilo"`` (a deviation of G's output at
      ``extension_depth``, in an l1 ball) or ``"sparse"`` (a deviation of
      the image, or of a depth, with an l1 penalty).
    extension_depth: the generator depth the deviation is added at
      (``None``: 1 for ``"ilo"``, the image for ``"sparse"``).
    extension_radius: ``"ilo"``'s ball: the mean absolute deviation allowed
      per entry of the depth's output.
    extension_shrink: ``"sparse"``'s soft-threshold after every latent step.
    extension_from: the outer step from which the deviation moves (before
      it, it stays 0 and the steps are the plain solve's); 0: from the
      first.
    recentre: ``None`` (off) or a distance in pixels: a solve whose linear
      conv kernel's energy centroid sits farther than this from the centre
      (0: any solve) is solved again from its sources moved back by the
      centroid, and the better fit among the more centred is kept
      (:mod:`blindinv_jax.recentre`; about twice the solve's time when it
      runs).
    recentre_restarts: the second solve's restarts, every one from the
      moved-back sources with its own fresh surrogate, one kept by
      ``select`` (1: one; with ``select="centred"``, as the deblurring
      config has it, the best fit among the most centred). A second solve
      can drift off centre again; the most centred of several is what the
      keep rule then compares.
  """
  outer_steps: int = 100
  surrogate_steps: int = 50
  latent_steps: int = 50
  surrogate_lr: float = 4e-3
  latent_lr: float = 3e-4
  latent_lr_end: Optional[float] = None
  alpha: float = DEFAULT_ALPHA        # 1e-4, or 0 without D: resolve_alpha
  loss: str = "l1"
  clip: float = 1.0
  restarts: int = 1
  select: str = "fit"
  batch_size: Optional[int] = None
  unroll: Union[None, int, str] = None
  grad_pieces: Optional[int] = None
  precision: Optional[str] = None
  extension: Optional[str] = None
  extension_depth: Optional[int] = None
  extension_radius: float = 0.05
  extension_shrink: float = 1e-3
  extension_from: int = 0
  recentre: Optional[float] = None
  recentre_restarts: int = 1

  def replace(self, **kw) -> "SolverConfig":
    return dataclasses.replace(self, **kw)

  def validate(self) -> "SolverConfig":
    for f in ("outer_steps", "surrogate_steps", "latent_steps", "restarts",
              "recentre_restarts"):
      check_positive_int(f"SolverConfig.{f}", getattr(self, f))
    for f in ("surrogate_lr", "latent_lr", "clip"):
      check_positive_number(f"SolverConfig.{f}", getattr(self, f))
    for f in ("batch_size", "grad_pieces"):
      if getattr(self, f) is not None:
        check_positive_int(f"SolverConfig.{f}", getattr(self, f))
    if self.latent_lr_end is not None and not (
        isinstance(self.latent_lr_end, (int, float)) and
        np.isfinite(self.latent_lr_end) and self.latent_lr_end > 0):
      raise ValueError(f"SolverConfig.latent_lr_end must be None or a "
                       f"positive number, got {self.latent_lr_end!r}.")
    if not (isinstance(self.alpha, (int, float)) and self.alpha >= 0):
      raise ValueError(f"SolverConfig.alpha must be >= 0, got {self.alpha!r}.")
    if not (self.unroll is None or self.unroll == "full" or (
        isinstance(self.unroll, (int, np.integer)) and
        not isinstance(self.unroll, bool) and self.unroll >= 1)):
      raise ValueError(f"SolverConfig.unroll must be None, 'full' or a "
                       f"positive int, got {self.unroll!r}.")
    check_precision(self.precision)
    if self.extension is not None and self.extension not in EXTENSIONS:
      raise ValueError(f"SolverConfig.extension must be None or one of "
                       f"{EXTENSIONS}, got {self.extension!r}.")
    check_positive_number("SolverConfig.extension_radius",
                          self.extension_radius)
    if not (isinstance(self.extension_from, int) and
            self.extension_from >= 0):
      raise ValueError(f"SolverConfig.extension_from must be an int >= 0, "
                       f"got {self.extension_from!r}.")
    if not (isinstance(self.extension_shrink, (int, float)) and
            self.extension_shrink >= 0):
      raise ValueError(f"SolverConfig.extension_shrink must be >= 0, got "
                       f"{self.extension_shrink!r}.")
    if self.recentre is not None and not (
        isinstance(self.recentre, (int, float)) and
        not isinstance(self.recentre, bool) and 0 <= self.recentre < np.inf):
      raise ValueError(f"SolverConfig.recentre must be None or a distance "
                       f">= 0 in pixels, got {self.recentre!r}.")
    if self.select not in SELECT:
      raise ValueError(f"SolverConfig.select must be one of {SELECT}, got "
                       f"{self.select!r}.")
    if self.loss not in ("l1", "l2"):
      raise ValueError(f"SolverConfig.loss must be 'l1' or 'l2', got "
                       f"{self.loss!r}.")
    return self


def as_identity(config: SolverConfig) -> dict:
  """``config`` as a run's identity records it (JSON): the extension's
  fields only when it is on (files written before it existed lack them)."""
  cfg = dataclasses.asdict(config)
  if config.extension is None:
    for f in [f for f in cfg if f.startswith("extension")]:
      cfg.pop(f)
  if config.recentre is None:           # absent from older files
    cfg.pop("recentre")
  cfg.pop("recentre_restarts")          # the second solve's, which has its own
  return cfg


def resolve_alpha(config: SolverConfig, prior) -> Tuple[SolverConfig, str]:
  """``config`` as a solve with ``prior`` runs it, and a note (or "").

  The default alpha (:data:`DEFAULT_ALPHA`) becomes a plain 1e-4 for a prior
  with a discriminator (the config and compiled program of ``alpha=1e-4``)
  and 0 for a prior without one, which the note says. An alpha set
  explicitly is kept as it is
  (:func:`blindinv_jax.validation.check_perceptual` refuses a positive one
  without a discriminator).
  """
  has_d = getattr(prior, "has_discriminator", None)  # None: validation's
  if not isinstance(config.alpha, DefaultAlpha) or has_d is None:  # to refuse
    return config, ""
  if has_d:
    return config.replace(alpha=float(config.alpha)), ""
  return config.replace(alpha=0.0), (
      f"this prior ({type(prior).__name__}) has no discriminator, so the "
      "perceptual term is off (alpha=0, the default for such a prior): the "
      "data term alone decides.")


def for_prior(config: SolverConfig, prior) -> SolverConfig:
  """:func:`resolve_alpha`'s config, its note as a ``UserWarning``: what
  every entry point (solve, pgd, refine) runs."""
  config, note = resolve_alpha(config, prior)
  if note:
    warnings.warn(note, UserWarning, stacklevel=3)
  return config


#: The paper's schedule (section 3.1): T=100, T1=T2=50, Adam 4e-3 / 3e-4.
PAPER = SolverConfig()

#: The MNIST experiments' schedule: T=60, latent step size 1e-2.
TUNED = SolverConfig(outer_steps=60, latent_lr=1e-2)

#: TUNED cut to 30 outer steps, lowered as a plain ``fori_loop``.
FAST = TUNED.replace(outer_steps=30, unroll=1)
