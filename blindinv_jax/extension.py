"""Range extension: recoveries that leave the generator's range where the
data insist (``SolverConfig.extension``).

Every recovery of Algorithm 1 is ``G(z)``, so it is capped by what G can
draw. Two levers of the literature let the latent phase step off the range
by a controlled amount; both are a *prior* whose latent is the pair
``[z, d]`` (``latent_dim = L + size(d)``), so the solver, minibatches,
sharding, restarts and checkpoints carry them unchanged:

* ``"ilo"``, intermediate layer optimisation (Daras et al. 2021):
  ``x = G_after_k(G_upto_k(z) + d)``, with ``d`` the deviation of G's
  output at depth k (``[h, w, f]``) projected, after every latent step,
  onto the l1 ball ``|d|_1 <= radius * size(d)`` of each source (``radius``:
  the mean absolute deviation allowed per entry).
* ``"sparse"``, sparse deviations (Dhar, Grover and Ermon 2018): ``x = G(z) +
  nu`` at the image (or ``G``'s output at a depth), with an l1 penalty on
  ``nu`` applied as its proximal step: after every latent step ``nu`` is
  soft-thresholded by ``shrink`` (the proximal step of ``shrink / step size
  * |nu|_1``).

P (the projection after every latent step, Algorithm 1's) is the prior's own
on ``z`` and the ball or the soft-threshold on ``d``; ``d`` starts at 0, so
the first latent step starts from ``G(z)``. ``SolverConfig.extension_from``
holds ``d`` at 0 until that outer step (:class:`GatedStep`), so a solve can
first find ``z`` and the surrogate and then let the recoveries leave the
range, as intermediate layer optimisation goes layer by layer. A depth other than the image
needs the prior's intermediate-layer hook (``depth_shapes``, ``intermediate(z,
depth)``, ``from_intermediate(h, depth)``; the DCGAN and VAE priors have
it, docs/priors.md); deviations at the image work with any prior.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Optional, Tuple

import flax
import jax
import jax.numpy as jnp

HOOK = ("depth_shapes", "intermediate", "from_intermediate")


def l1_ball(v: jax.Array, radius) -> jax.Array:
  """The Euclidean projection of ``v [..., D]`` onto ``{|u|_1 <= radius}``
  (Duchi et al. 2008: sort, then one threshold per row)."""
  a = jnp.abs(v)
  mu = jnp.flip(jnp.sort(a, axis=-1), axis=-1)
  cs = jnp.cumsum(mu, axis=-1)
  k = jnp.arange(1, v.shape[-1] + 1, dtype=v.dtype)
  rho = jnp.sum(mu - (cs - radius) / k > 0, axis=-1, keepdims=True)
  rho = jnp.maximum(rho, 1)
  theta = (jnp.take_along_axis(cs, rho - 1, axis=-1) - radius) / rho
  inside = jnp.sum(a, axis=-1, keepdims=True) <= radius
  return jnp.where(inside, v, jnp.sign(v) * jnp.maximum(a - theta, 0.0))


def soft_threshold(v: jax.Array, shrink) -> jax.Array:
  """``sign(v) max(|v| - shrink, 0)``: the proximal step of an l1 penalty."""
  return jnp.sign(v) * jnp.maximum(jnp.abs(v) - shrink, 0.0)


def has_hook(prior) -> bool:
  """Whether ``prior`` exposes its intermediate layers."""
  return all(hasattr(prior, a) for a in HOOK)


def image_depth(prior) -> int:
  """The depth that is the image: the last of ``depth_shapes``, or -1 for a
  prior without the hook (deviations at the image need none)."""
  return len(prior.depth_shapes) - 1 if has_hook(prior) else -1


class ExtendedPrior(flax.struct.PyTreeNode):
  """``base`` with the latent ``[z, d]`` (see the module docstring).

  generate: ``[..., L + D]`` -> images ``[..., H, W, C]``; sample_latents:
  z from ``base``, d = 0; project_latents: ``base``'s P on z, the l1 ball
  (``"ilo"``) or the soft-threshold (``"sparse"``) on d; discriminate:
  ``base``'s. ``depth``: -1 or the image's depth for deviations of the image.
  ``active``: None (always on) or a traced bool: while False, P sets d to
  0, so ``generate`` is ``base``'s (:class:`GatedStep` sets it per step).
  """
  base: Any
  kind: str = flax.struct.field(pytree_node=False)
  depth: int = flax.struct.field(pytree_node=False)
  radius: float = flax.struct.field(pytree_node=False, default=0.0)
  shrink: float = flax.struct.field(pytree_node=False, default=0.0)
  active: Any = None

  @property
  def deviation_shape(self) -> Tuple[int, ...]:
    if self.depth < 0:
      return tuple(self.base.image_shape)
    return tuple(self.base.depth_shapes[self.depth])

  @property
  def deviation_size(self) -> int:
    return math.prod(self.deviation_shape)

  @property
  def latent_dim(self) -> int:
    return self.base.latent_dim + self.deviation_size

  @property
  def image_shape(self):
    return self.base.image_shape

  @property
  def has_discriminator(self) -> bool:
    return self.base.has_discriminator

  @property
  def latent(self):
    return getattr(self.base, "latent", "uniform")

  def split(self, latents: jax.Array):
    """``[..., L + D]`` -> ``(z [..., L], d [..., *deviation_shape])``."""
    n = self.base.latent_dim
    d = latents[..., n:]
    return latents[..., :n], d.reshape(*d.shape[:-1], *self.deviation_shape)

  def generate(self, latents: jax.Array) -> jax.Array:
    z, d = self.split(latents)
    if self.depth < 0:
      return self.base.generate(z) + d
    h = self.base.intermediate(z, self.depth) + d.astype(z.dtype)
    return self.base.from_intermediate(h, self.depth)

  def discriminate(self, x: jax.Array) -> jax.Array:
    return self.base.discriminate(x)

  def sample_latents(self, key: jax.Array, shape) -> jax.Array:
    return pad(self.base.sample_latents(key, shape), self)

  def project_latents(self, latents: jax.Array, clip: float = 1.0):
    n = self.base.latent_dim
    z, d = latents[..., :n], latents[..., n:]
    if self.kind == "ilo":
      d = l1_ball(d, self.radius * self.deviation_size)
    else:
      d = soft_threshold(d, self.shrink)
    if self.active is not None:
      d = jnp.where(self.active, d, jnp.zeros_like(d))
    return jnp.concatenate([self.base.project_latents(z, clip), d], axis=-1)


@dataclasses.dataclass(frozen=True)
class GatedStep:
  """An outer step (:func:`blindinv_jax.algorithm.outer_step` or the
  minibatch one) whose extended prior is active from outer step ``start``
  on: before it, d stays 0 and the step is the plain solve's; at ``start``
  the latents' Adam state starts afresh (a new variable joins them, as in
  intermediate layer optimisation's layer-by-layer schedule)."""
  step: Callable
  start: int

  def __call__(self, state, *args, prior, config, **kw):
    from blindinv_jax.algorithm import latent_optimizer
    fresh = jax.vmap(latent_optimizer(config).init)(state.z)
    at = state.step == self.start
    state = state.replace(latent_opt=jax.tree_util.tree_map(
        lambda a, b: jnp.where(at, a, b), fresh, state.latent_opt))
    return self.step(state, *args, prior=activate(
        prior, state.step >= self.start), config=config, **kw)


def activate(prior, on):
  """``prior`` with its extension's ``active`` set to ``on`` (through a
  precision wrapper's ``inner``); any other prior as it is."""
  if isinstance(prior, ExtendedPrior):
    return prior.replace(active=on)
  if isinstance(getattr(prior, "inner", None), ExtendedPrior):
    return prior.replace(inner=prior.inner.replace(active=on))
  return prior


def describe(prior) -> str:
  """One line naming an extended prior's extension (e.g. for a report)."""
  where = ("the image" if prior.depth < 0 else f"depth {prior.depth} ("
           + "x".join(map(str, prior.deviation_shape)) + ")")
  if prior.kind == "ilo":
    return f"ilo at {where}, l1 ball of radius {prior.radius:g} per entry"
  return f"sparse deviations at {where}, soft-threshold {prior.shrink:g}"


def pad(z: jax.Array, prior: ExtendedPrior) -> jax.Array:
  """Latents ``z [..., L]`` of the base prior -> ``[..., L + D]`` with
  ``d = 0`` (the range point ``G(z)`` itself)."""
  zeros = jnp.zeros((*z.shape[:-1], prior.deviation_size), z.dtype)
  return jnp.concatenate([z, zeros], axis=-1)


def check(prior, kind: Optional[str], depth: Optional[int]) -> None:
  """One clear error if ``prior`` cannot offer extension ``kind`` (one of
  ``config.EXTENSIONS``, which ``SolverConfig.validate`` checks) at
  ``depth`` (before any tracing)."""
  if kind is None:
    return
  if kind == "ilo" and depth is None:
    depth = 1
  if depth is None:
    return
  if not has_hook(prior):
    raise ValueError(
        f"prior {type(prior).__name__} does not expose its intermediate "
        f"layers ({', '.join(HOOK)}; docs/priors.md), so extension={kind!r} "
        f"at depth {depth} cannot run; sparse deviations of the image need "
        "no hook: extension='sparse' with extension_depth=None.")
  depths = len(prior.depth_shapes)
  if not (isinstance(depth, int) and 0 <= depth < depths):
    raise ValueError(f"SolverConfig.extension_depth must be an int in 0.."
                     f"{depths - 1} for this prior (its depths: "
                     f"{list(prior.depth_shapes)}; the last is the image), "
                     f"got {depth!r}.")


def extend(prior, config):
  """``prior`` with ``config``'s extension (``prior`` itself when
  ``config.extension`` is None, so a solve without it is today's)."""
  if config.extension is None:
    return prior
  check(prior, config.validate().extension, config.extension_depth)
  depth = config.extension_depth
  if depth is None:
    depth = 1 if config.extension == "ilo" else -1
  if depth >= 0 and depth == image_depth(prior):
    depth = -1
  return ExtendedPrior(base=prior, kind=config.extension, depth=depth,
                       radius=float(config.extension_radius),
                       shrink=float(config.extension_shrink))


def extend_solve(prior, config, init_latents=None):
  """The prior a solve runs (:func:`extend`) and its initial latents
  ``[N, S, L]`` (or None) on that prior's latent (``d = 0``)."""
  extended = extend(prior, config)
  if extended is not prior and init_latents is not None:
    init_latents = pad(jnp.asarray(init_latents), extended)
  return extended, init_latents


def range_part(result, prior):
  """``(reconstruction, sources)`` of a solve's result as the blind signal
  reads them: for a solve with a range extension (``result.deviations``
  set) its range part, ``F_hat(G(z))`` and ``G(z)`` (the deviations fit the
  observations' noise too); otherwise the result's own."""
  if getattr(result, "deviations", None) is None or prior is None:
    return result.reconstruction, result.sources
  from blindinv_jax.algorithm import stack_sources
  src = prior.generate(jnp.asarray(result.latents))
  return result.surrogate.apply(result.surrogate_params,
                                stack_sources(src)), src


def split_latents(latents, prior):
  """``(z [..., L], d [..., *deviation_shape] or None)`` of a solve's
  latents under ``prior`` (extended or not)."""
  if isinstance(prior, ExtendedPrior):
    return prior.split(latents)
  return latents, None
