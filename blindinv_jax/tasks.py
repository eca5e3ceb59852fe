"""The forward models an experiment simulates (:class:`TaskSpec`), each as a
function of the sources ``[N, S, H, W, C]`` (:func:`forward_model`).

Kinds, and the observations they make:

* ``"blur"`` (a Gaussian, ``kernel_size``, ``sigma``) and ``"edges"`` (the
  Sobel filter): ``[N, H, W, C]``, the scene continuing past the frame as
  ``boundary`` says (:data:`blindinv_jax.operators.BOUNDARIES`);
* ``"mix"``: ``|M^T X|`` of ``num_sources`` sources, ``[N, H, W, K]``;
* ``"downsample"``: the Gaussian blur, then every ``factor``-th pixel
  (super-resolution), ``[N, H/factor, W/factor, C]``;
* ``"mask"``: one mask for every observation (``mask_kind`` ``"random"``,
  a share ``missing`` of pixels lost, or ``"scratches"``, ``scratches``
  lines), a lost pixel reading ``fill`` (inpainting), ``[N, H, W, C]``;
* ``"measure"``: ``num_measurements`` projections of the flattened image by
  a Gaussian matrix (compressed sensing), ``[N, K]``.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from blindinv_jax import operators as ops
from blindinv_jax.validation import check_positive_int

KINDS = ("blur", "edges", "mix", "downsample", "mask", "measure")
#: Fields added with the kinds beyond the paper's: they count in an
#: experiment's identity only when set (:func:`later_defaults`).
LATER = {"factor": 2, "missing": 0.4, "mask_kind": "random", "scratches": 3,
         "fill": 0.0, "mask_seed": 0, "num_measurements": 200,
         "matrix_seed": 0}


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """The forward model F used to simulate the observations."""
  kind: str = "blur"                # one of KINDS
  kernel_size: int = 9              # blur, downsample
  sigma: float = 2.0                # blur, downsample
  num_sources: int = 1              # mix: S
  num_mixtures: int = 1             # mix: K
  mixing_seed: int = 0              # mix: M ~ N(-0.5, 0.5) [S, K]
  noise_sigma: float = 0.0          # noise std on y, [-1, 1] scale
  boundary: str = "scene"           # blur/edges/downsample: the border
  factor: int = 2                   # downsample: the grid's shrink
  missing: float = 0.4              # mask "random": share of pixels lost
  mask_kind: str = "random"         # mask: "random" | "scratches"
  scratches: int = 3                # mask "scratches": lines
  fill: float = 0.0                 # mask: what a lost pixel reads
  mask_seed: int = 0                # mask: the one mask's key
  num_measurements: int = 200       # measure: K
  matrix_seed: int = 0              # measure: A ~ N(0, 1/M) [M, K]


def check_task(task: TaskSpec) -> TaskSpec:
  """``task`` if its kind and fields are valid, else a ValueError."""
  if task.kind not in KINDS:
    raise ValueError(f"task.kind must be one of {KINDS}, got {task.kind!r}.")
  ops.check_boundary(task.boundary)
  if not task.noise_sigma >= 0:
    raise ValueError(f"task.noise_sigma must be >= 0 (on the [-1, 1] "
                     f"scale), got {task.noise_sigma!r}.")
  for f in ("num_sources", "num_mixtures", "factor", "scratches",
            "num_measurements"):
    check_positive_int(f"task.{f}", getattr(task, f))
  if task.kind != "mix" and task.num_sources != 1:
    raise ValueError(f"{task.kind} tasks have one source per observation.")
  if task.mask_kind not in ("random", "scratches"):
    raise ValueError(f"task.mask_kind must be 'random' or 'scratches', got "
                     f"{task.mask_kind!r}.")
  if not 0 <= task.missing < 1:
    raise ValueError(f"task.missing must be in [0, 1), got {task.missing!r}.")
  return task


def forward_model(task: TaskSpec, image_shape=None):
  """``(forward, info)``: F as a function of sources ``[N, S, H, W, C]``
  and what defines it (the kernel, the mixing matrix, the mask or the
  measurement matrix). ``image_shape`` ``(H, W, C)`` is needed by
  ``"mask"`` and ``"measure"``."""
  b = task.boundary
  if task.kind in ("blur", "edges"):
    k = (ops.gaussian_kernel(task.kernel_size, task.sigma)
         if task.kind == "blur" else jnp.asarray(ops.SOBEL))
    return (lambda x: ops.blur(x[:, 0], k, b)), {"kernel": k, "boundary": b}
  if task.kind == "downsample":
    k, s = ops.gaussian_kernel(task.kernel_size, task.sigma), task.factor
    return ((lambda x: ops.downsample(x[:, 0], s, k, b)),
            {"kernel": k, "boundary": b, "factor": s})
  if task.kind == "mask":
    key, hw = jax.random.key(task.mask_seed), tuple(image_shape[:2])
    m = (ops.random_pixel_mask(key, hw, task.missing)
         if task.mask_kind == "random" else
         ops.scratch_mask(key, hw, count=task.scratches))
    return (lambda x: ops.mask(x[:, 0], m, task.fill)), {"mask": m}
  if task.kind == "measure":
    size = int(image_shape[0] * image_shape[1] * image_shape[2])
    a = ops.gaussian_matrix(jax.random.key(task.matrix_seed), size,
                            task.num_measurements)
    return (lambda x: ops.measure(x[:, 0], a)), {"matrix": a}
  m = ops.random_mixing(jax.random.key(task.mixing_seed), task.num_sources,
                        task.num_mixtures)
  return (lambda x: ops.mix(x, m)), {"mixing": m}


def later_defaults(task_dict: dict) -> dict:
  """A task's JSON dict without the :data:`LATER` fields at their
  defaults (an experiment's identity: earlier runs stay valid)."""
  return {k: v for k, v in task_dict.items()
          if not (k in LATER and v == LATER[k])}
