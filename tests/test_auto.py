"""surrogate="auto" / num_sources="auto": the choice by held-out pixels."""
import jax
import numpy as np
import pytest

from blindinv_jax import auto, operators as ops, solver
from blindinv_jax.models.surrogates import make_surrogate

CFG = solver.SolverConfig(outer_steps=8, surrogate_steps=10, latent_steps=4,
                          latent_lr=3e-2, unroll=2)


@pytest.fixture(scope="module")
def sources(tiny_run):
  _, prior = tiny_run
  x = prior.generate(prior.sample_latents(jax.random.key(11), (8, 3)))
  return prior, x                                     # [8, 3, 8, 8, 1]


def test_heldout_mask_is_a_fixed_share_drawn_from_the_seed():
  a = np.asarray(auto.heldout_mask(3, 28, 28, 0.1))
  assert a.shape == (28, 28, 1) and a.sum() == round(0.1 * 28 * 28)
  np.testing.assert_array_equal(a, np.asarray(auto.heldout_mask(3, 28, 28)))
  assert not np.array_equal(a, np.asarray(auto.heldout_mask(4, 28, 28)))


def test_heldout_entries_are_each_observations_own_share():
  a = np.asarray(auto.heldout_mask(3, 28, 28, 0.1, n=5))
  assert a.shape == (5, 28, 28, 1)
  np.testing.assert_array_equal(a.sum(axis=(1, 2, 3)), round(0.1 * 28 * 28))
  assert not np.array_equal(a[0], a[1])
  # a longer set keeps the first observations' pixels
  np.testing.assert_array_equal(
      a, np.asarray(auto.heldout_mask(3, 28, 28, 0.1, n=7))[:5])


def test_pick_keeps_the_simplest_unless_a_richer_one_wins_consistently():
  rng = np.random.default_rng(0)
  base = rng.uniform(0.05, 0.15, 80)
  rows = [("conv", 1, 0.104, 0.1), ("mixing", 1, 0.3, 0.3),
          ("conv_mlp", 1, 0.100, 0.09)]
  # conv_mlp 4% lower on every pixel: consistent, so it replaces conv
  pixels = [base * 1.04, base * 3, base]
  fam, s, duels = auto.pick(rows, pixels)
  assert (fam, s) == ("conv_mlp", 1)
  assert [d[:2] for d in duels] == [("conv", "mixing"), ("conv", "conv_mlp")]
  assert duels[1][3] > auto.T_CRIT and duels[1][4]
  # the same 4% on average, but from a few pixels: not consistent
  noisy = base * 1.04 + rng.normal(0, 0.1, 80)
  rows[0] = ("conv", 1, float(np.mean(noisy)), 0.1)
  rows[2] = ("conv_mlp", 1, float(np.mean(noisy)) / 1.04, 0.09)
  assert auto.pick(rows, [noisy, base * 3, noisy - 0.004 + rng.normal(
      0, 0.1, 80)])[0] == "conv"
  # a gain below min_gain is not enough, however consistent
  assert auto.pick(rows, pixels, min_gain=0.05)[0] == "conv"
  # a diverged simplest family loses to any finite one
  assert auto.pick([("conv", 1, np.nan, 0.0), ("mixing", 1, 0.2, 0.1)],
                   [base * np.nan, base])[:2] == ("mixing", 1)


def test_paired_t():
  assert auto.paired_t([1.0, 2.0, 3.0], [0.0, 1.0, 2.0]) == np.inf
  assert auto.paired_t([1.0, 2.0], [1.0, 2.0]) == 0.0
  assert auto.paired_t([1.0, 2.0, 3.5], [0.5, 1.0, 3.0]) > 0


# measured: docs/notes/2026-11-26-choosing-the-surrogate.md#choosing-s
@pytest.mark.parametrize("held,s", [
    ((0.04104, 0.04128, 0.04332, 0.04632), 1),
    ((0.14486, 0.07289, 0.07666, 0.06525), 2),
    ((0.22408, 0.20051, 0.15758, 0.14665), 3)])
def test_pick_adds_sources_while_each_cuts_the_error_by_10_percent(held, s):
  rows = [("mixing", i + 1, h, h / 2) for i, h in enumerate(held)]
  assert auto.pick(rows, [(r[2], r[2]) for r in rows])[:2] == ("mixing", s)


@pytest.mark.filterwarnings("ignore:observations lie in",
                            "ignore:observations have 4 channels")
def test_auto_picks_conv_on_a_blur_and_mixing_on_a_mixture(sources):
  prior, x = sources
  from blindinv_jax.models.surrogates import FAMILIES
  blur = ops.blur(x[:, 0], ops.gaussian_kernel(3, 1.0), "zero")  # conv's own
  res = solver.solve(blur, prior, config=CFG, key=jax.random.key(1))
  assert res.choice.family == "conv", res.choice.table()
  assert len(res.choice.candidates) == len(FAMILIES)
  assert res.choice.num_sources == 1
  named = solver.solve(blur, prior, surrogate="conv", config=CFG,
                       key=jax.random.key(1))
  np.testing.assert_array_equal(res.sources, named.sources)  # same solve
  assert named.choice is None
  m = ops.random_mixing(jax.random.key(0), 3, 4)
  mixed = ops.mix(x, m)
  res = solver.solve(mixed, prior, num_sources=3, config=CFG,
                     key=jax.random.key(1))
  assert res.choice.family == "mixing", res.choice.table()


def test_heldout_entries_let_auto_pick_mask_on_a_masked_set(sources):
  """One unknown mask for every observation: a per-pixel family is
  scorable only when each observation holds out its own pixels, so each
  pixel's gain is learned from the observations that see it."""
  prior, x = sources
  m = ops.random_pixel_mask(jax.random.key(5), (8, 8), 0.4)
  # the tiny prior draws values near 0: a lost pixel reads 1 to stand out;
  # a higher surrogate step lets 80 steps move the gains from 1 to 0
  y = ops.mask(x[:, 0], m, fill=1.0)
  choice = auto.choose(y, prior, config=CFG.replace(surrogate_lr=3e-2),
                       key=jax.random.key(1), families=("conv", "mask"),
                       heldout="entries")
  assert choice.family == "mask", choice.table()
  (_, _, conv, _), (_, _, mask, _) = choice.candidates
  assert mask < 0.5 * conv, choice.table()
  assert len(choice.pixel_errors[1]) == 8 * round(0.1 * 64)  # per entry
  with pytest.raises(ValueError, match="not per-pixel"):
    auto.choose(y, prior, config=CFG, families=("mask",))


def test_mask_duels_the_winner_on_held_out_entries_by_default(sources):
  """With the default held-out pixels, ``mask`` is not screened beside the
  others (it could not be scored) but duels the winner afterwards on
  held-out entries, and needs ``PER_PIXEL_GAIN`` to replace it: it does on a
  masked set, and not on a blurred one."""
  prior, x = sources
  m = ops.random_pixel_mask(jax.random.key(5), (8, 8), 0.4)
  cfg = CFG.replace(surrogate_lr=3e-2)
  seen = []
  masked = auto.choose(ops.mask(x[:, 0], m, fill=1.0), prior, config=cfg,
                       key=jax.random.key(1), families=("conv", "mask"),
                       on_candidate=seen.append)
  assert masked.family == "mask", masked.table()
  assert [r[0] for r in masked.candidates] == ["conv"]
  assert [r[0] for r in masked.entry_candidates] == ["conv", "mask"]
  assert [r[0] for r in seen] == ["conv", "conv (held-out entries)",
                                  "mask (held-out entries)"]
  (a, b, gain, t, won), = masked.duels
  assert (a, b, won) == ("conv", "mask", True) and gain >= 0.25
  assert "per-pixel duel" in masked.table()
  assert masked.duel_lines()[-1].endswith(
      "(needs a cut >= 25% and t >= 2, on held-out entries)")
  again = auto.SurrogateChoice.from_dict(masked.to_dict())
  assert again == masked
  blurred = auto.choose(ops.blur(x[:, 0], ops.gaussian_kernel(3, 1.0)),
                        prior, config=cfg, key=jax.random.key(1),
                        families=("conv", "mask"))
  assert blurred.family == "conv", blurred.table()
  assert not blurred.duels[-1][-1]
  assert "mask" in auto.families_for("auto")


def test_choose_screens_the_border_families_when_named(sources):
  """``families=`` may name the border families, which ``"auto"`` itself
  does not screen (docs/results.md: one-restart screens pick among them by
  the basin a solve lands in, not by the border)."""
  prior, x = sources
  y = ops.blur(x[:, 0], ops.gaussian_kernel(3, 1.0), boundary="circular")
  c = auto.choose(y, prior, config=CFG, key=jax.random.key(2),
                  families=("conv_scene", "conv_reflect", "conv_circular"))
  assert [r[0] for r in c.candidates] == ["conv_scene", "conv_reflect",
                                          "conv_circular"]
  assert all(np.isfinite(r[2]) and np.isfinite(r[3]) for r in c.candidates)
  assert c.family in ("conv_scene", "conv_reflect", "conv_circular")
  assert "conv_reflect" not in auto.families_for("auto")


def test_heldout_pixels_never_reach_the_fit(sources):
  prior, x = sources
  y = ops.blur(x[:, 0], ops.gaussian_kernel(3, 1.0))
  key = jax.random.key(2)
  seed = int(jax.random.randint(jax.random.fold_in(key, 0x5eed), (), 0,
                                2**31 - 1))
  mask = auto.heldout_mask(seed, 8, 8)
  y2 = y + 0.5 * mask                       # differs on held-out pixels only
  a = auto.choose(y, prior, config=CFG, key=key, families=("conv",))
  b = auto.choose(y2, prior, config=CFG, key=key, families=("conv",))
  (_, _, held_a, fit_a), = a.candidates
  (_, _, held_b, fit_b), = b.candidates
  assert fit_a == fit_b                     # the fit saw the same data
  assert held_b > held_a + 0.1              # the held-out error did not
  assert len(a.pixel_errors[0]) == int(np.asarray(mask).sum())
  np.testing.assert_allclose(np.mean(a.pixel_errors[0]), held_a, rtol=1e-5)


def test_kernel_size_reaches_the_conv_candidates_and_the_solve(
    sources, monkeypatch, tmp_path):
  """solve(kernel_size=K) with "auto": the conv candidates screen with K
  (mixing and mask have no kernel), the full solve uses the winner with K, and a
  remembered choice is one of the same K."""
  prior, x = sources
  y = ops.blur(x[:, 0], ops.gaussian_kernel(3, 1.0))
  built = []
  real = auto.make_surrogate
  monkeypatch.setattr(auto, "make_surrogate",
                      lambda *a: built.append(real(*a)) or built[-1])
  cfg = CFG.replace(outer_steps=2)
  res = solver.solve(y, prior, config=cfg, kernel_size=13,
                     checkpoint_dir=tmp_path)
  assert {type(m).__name__: getattr(m, "kernel_size", None)
          for m in built} == {"LinearConvSurrogate": 7,
                              "SceneConvSurrogate": 7,
                              "MixingSurrogate": None,
                              "ConvMLPSurrogate": 7,
                              "MaskSurrogate": None}
  assert res.surrogate == real(res.choice.family, 1, 13)
  with pytest.raises(ValueError, match="surrogate choice of a different "
                     "solve"):
    solver.solve(y, prior, config=cfg, checkpoint_dir=tmp_path)


def test_the_table_and_the_duel_lines_state_one_sign_convention():
  """A positive cut is a lower held-out error for the challenger, in the
  table (which says so under the duels) and in the words alike."""
  c = auto.SurrogateChoice(
      family="mixing", num_sources=1,
      candidates=(("conv", 1, 0.10, 0.09), ("mixing", 1, 0.08, 0.07),
                  ("conv_mlp", 1, 0.082, 0.06)),
      duels=(("conv", "mixing", 0.2, 5.0, True),
             ("mixing", "conv_mlp", -0.025, -1.5, False)),
      min_gain=0.01, t_crit=2.0, fraction=0.1, screen_n=8, screen_steps=5)
  table = c.table()
  assert "| conv | mixing | +20.0% | 5.00 | yes |" in table
  assert "| mixing | conv_mlp | -2.5% | -1.50 | no |" in table
  assert ("positive when the challenger's error is lower" in
          table.splitlines()[-1])
  assert "cut >= 1% and t >= 2" in table
  long = c.duel_lines()
  assert long[0].startswith("mixing vs conv: held-out L1 20.0% lower "
                            "(cut +20.0%), paired t 5.00 -> replaces conv")
  assert long[1].startswith("conv_mlp vs mixing: held-out L1 2.5% higher "
                            "(cut -2.5%), paired t -1.50 -> keeps mixing")
  assert c.duel_lines(short=True) == ("mixing vs conv: cut +20.0%, t 5.0",
                                      "conv_mlp vs mixing: cut -2.5%, t -1.5")


def test_auto_errors(sources):
  prior, x = sources
  y = x[:, 0]
  with pytest.raises(ValueError, match="chooses among"):
    auto.choose(y, prior, families=("mlp",))
  with pytest.raises(ValueError, match="needs a named surrogate family"):
    solver.solve(y, prior, num_sources="auto",
                 surrogate=make_surrogate("conv", 1))
  with pytest.raises(ValueError, match="fraction"):
    auto.choose(y, prior, fraction=1.5)


def test_a_choice_saved_by_the_old_rule_still_loads():
  old = {"family": "conv", "num_sources": 1, "candidates": [
      ["conv", 1, 0.01, 0.009], ["mixing", 1, 0.2, 0.19]], "tolerance": 0.05,
      "fraction": 0.1, "screen_n": 16, "screen_steps": 15}
  c = auto.SurrogateChoice.from_dict(old)
  assert (c.family, c.num_sources, c.duels, c.pixel_errors) == ("conv", 1,
                                                               (), ())
  assert c.candidates[1] == ("mixing", 1, 0.2, 0.19)
  assert "conv" in c.table()
  assert auto.SurrogateChoice.from_dict(c.to_dict()) == c


def test_a_remembered_choice_is_reused_only_by_the_same_run(sources,
                                                            tmp_path):
  prior, x = sources
  y = ops.blur(x[:, 0], ops.gaussian_kernel(3, 1.0))
  kw = dict(y=y, prior=prior, num_sources=1, families=("conv",),
            config=CFG.replace(outer_steps=5), key=jax.random.key(0))
  first = auto.choose_once(tmp_path, **kw)
  assert (tmp_path / auto.CHOICE_NAME).is_file()
  # a resumed solve may run longer: the choice is read back, not screened
  again = auto.choose_once(tmp_path, **{**kw, "config": CFG})
  assert again == first
  with pytest.raises(ValueError, match="key"):
    auto.choose_once(tmp_path, **{**kw, "key": jax.random.key(1)})
  with pytest.raises(ValueError, match="observations"):
    auto.choose_once(tmp_path, **{**kw, "y": y + 0.1})
