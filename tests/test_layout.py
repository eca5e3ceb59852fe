"""The package's layout stays readable: small modules, public seams only."""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).parent.parent / "blindinv_jax"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 450


def _name(path: pathlib.Path) -> str:
  parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def private_imports(path: pathlib.Path, me: str = "") -> list:
  """``_names`` this module (named ``me``) takes from another blindinv_jax
  module: imported by name, or read as an attribute of an imported module.
  Dunder names (``__version__``) are public."""
  tree = ast.parse(path.read_text())
  me = me or _name(path)
  private = lambda n: n.startswith("_") and not n.startswith("__")
  bad, modules = [], {}
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and node.module and (
        node.module.startswith("blindinv_jax")):
      for a in node.names:
        if private(a.name) and node.module != me:
          bad.append(f"from {node.module} import {a.name}")
        modules[a.asname or a.name] = f"{node.module}.{a.name}"
    elif isinstance(node, ast.Import):
      for a in node.names:
        if a.name.startswith("blindinv_jax"):
          modules[a.asname or a.name.split(".")[0]] = a.name
  for node in ast.walk(tree):
    if (isinstance(node, ast.Attribute) and private(node.attr) and
        isinstance(node.value, ast.Name) and node.value.id in modules):
      bad.append(f"{node.value.id}.{node.attr}")
  return bad


def test_the_package_has_modules():
  assert len(MODULES) > 20
  assert PACKAGE / "algorithm.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _name(p))
def test_module_is_short(path):
  n = len(path.read_text().splitlines())
  assert n <= MAX_LINES, f"{path.name} has {n} lines (at most {MAX_LINES})"


def test_algorithm_fits_on_one_page():
  n = len((PACKAGE / "algorithm.py").read_text().splitlines())
  assert n <= 300, n


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _name(p))
def test_no_private_names_from_other_modules(path):
  assert private_imports(path) == []


def test_the_check_catches_private_imports(tmp_path):
  probe = tmp_path / "probe.py"
  probe.write_text("from blindinv_jax.solver import _x\n"
                   "from blindinv_jax import __version__, backend\n"
                   "y = backend._hidden\n")
  assert private_imports(probe, "blindinv_jax.probe") == [
      "from blindinv_jax.solver import _x", "backend._hidden"]


def test_algorithm_imports_no_io_or_drivers():
  """Algorithm 1 depends on the config and the backend interface only."""
  tree = ast.parse((PACKAGE / "algorithm.py").read_text())
  imported = {n.module for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom) and n.module}
  imported |= {f"blindinv_jax.{a.name}" for n in ast.walk(tree)
               if isinstance(n, ast.ImportFrom) and n.module == "blindinv_jax"
               for a in n.names}
  ours = {m for m in imported if m.startswith("blindinv_jax")}
  assert ours <= {"blindinv_jax", "blindinv_jax.backend",
                  "blindinv_jax.config"}, ours
