"""experiments/perf/bench.py: every option described, and PyTorch asked for
before any work when a PyTorch variant is wanted without it."""
import sys

import pytest

from conftest import ROOT, load_experiment_module


@pytest.fixture
def bench(monkeypatch):
  monkeypatch.syspath_prepend(str(ROOT / "experiments" / "perf"))
  return load_experiment_module("perf/bench")


def test_help_describes_every_option(bench):
  actions = [a for a in bench.build_parser()._actions
             if a.option_strings and a.dest != "help"]
  assert len(actions) == 10
  for a in actions:
    assert a.help and len(a.help) > 15, a.option_strings


class Worked(Exception):
  """Raised where bench.py would start its work (loading the prior)."""


@pytest.fixture
def no_torch(monkeypatch, bench):
  from blindinv_jax import priors
  monkeypatch.setitem(sys.modules, "torch", None)      # not importable
  monkeypatch.setattr(priors, "load_prior", lambda *a, **k: (_ for _ in ())
                      .throw(Worked()))
  assert not bench.torch_available()
  return bench


@pytest.mark.parametrize("argv", [[], ["--variants", "default,torch_eager"],
                                  ["--variants", "torch_compile"]])
def test_a_torch_variant_without_torch_names_the_install_first(
    no_torch, argv, capsys):
  with pytest.raises(SystemExit) as e:
    no_torch.main(argv + ["--n", "1"])
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert 'need PyTorch, which is not installed: pip install -e ".[torch]"' \
      in err and "--no-torch" in err


@pytest.mark.parametrize("argv", [["--no-torch"], ["--variants", "default"]])
def test_jax_variants_alone_need_no_torch(no_torch, argv):
  with pytest.raises(Worked):                          # got to the work
    no_torch.main(argv + ["--n", "1"])
