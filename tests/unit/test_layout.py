"""Rules of the tree itself: no fixed sleeps in cases, declared dependencies, protocol-free generic modules,
and the layers (the verdict model and the catalogue at the bottom; the reports never import the harness)."""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERIC = ["fixtures/peers.py", "fixtures/sessions.py", "fixtures/faults.py", "reports/render.py",
           "fixtures/plugin.py", "reports/plugin.py"]


def python_files(*folders: str) -> list[Path]:
    return [p for folder in folders for p in (ROOT / folder).rglob("*.py")]


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_no_case_sleeps_or_waits_on_a_condition_that_never_holds():
    """A fixed pause papers over a race: cases wait on what the wire or the tester shows, with a bound."""
    offenders = []
    for path in python_files("conformance"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("time.sleep", "sleep"):
                offenders.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
            if isinstance(node, ast.Lambda) and isinstance(node.body, ast.Constant) and not node.body.value:
                offenders.append(f"{path.name}:{node.lineno} waits on {ast.unparse(node)}")
    assert not offenders, offenders


def _declared(*files: str) -> set[str]:
    names = set()
    for name in files:
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-r"):
                names.add(re.split(r"[<>=!~\[ ]", line)[0].lower().replace("-", "_"))
    return names


# Import names of the distributions that provide them, where they differ.
DISTRIBUTION = {"docker": "docker", "jinja2": "jinja2", "markupsafe": "markupsafe", "xdist": "pytest_xdist",
                "_pytest": "pytest", "pluggy": "pytest", "tlslite": "tlslite_ng"}


def _third_party(paths: list[Path]) -> set[str]:
    local = {"fixtures", "reports", "conformance", "tests", "benchmarks"}
    tops = {name.split(".")[0] for path in paths for name in imports(path)}
    return {DISTRIBUTION.get(t, t).lower() for t in tops if t not in local and t not in sys.stdlib_module_names}


def test_runtime_imports_are_declared_and_test_only_ones_are_not_runtime():
    toolbox = ROOT / "fixtures" / "toolbox"
    runtime = _third_party([p for p in python_files("fixtures", "reports", "conformance", "benchmarks")
                            if toolbox not in p.parents])
    declared = _declared("requirements.txt")
    assert runtime <= declared, f"imported but not in requirements.txt: {sorted(runtime - declared)}"
    unused = declared - runtime - {"pytest", "pytest_xdist", "trustme"}  # the runner, its plugin, the design card's CA
    assert not unused, f"requirements.txt declares {sorted(unused)}, which no runtime module imports"
    tests_only = _third_party(python_files("tests")) - runtime
    test_declared = _declared("requirements-test.txt")
    assert tests_only <= declared | test_declared, f"tests import undeclared {sorted(tests_only - declared - test_declared)}"


def test_pyproject_mirrors_the_requirement_files():
    text = (ROOT / "pyproject.toml").read_text()
    runtime = _declared("requirements.txt")
    listed = {re.split(r"[<>=!~\[ ]", m)[0].lower().replace("-", "_")
              for m in re.findall(r'"([A-Za-z0-9_.\-]+[<>=!~][^"]*)"', text.split("[project.optional-dependencies]")[0])}
    assert listed == runtime


def test_generic_modules_name_no_protocol():
    for name in GENERIC:
        hits = [ln for ln in (ROOT / name).read_text().splitlines() if re.search(r'"(tcp|websocket)"', ln)]
        assert not hits, f"{name} names a protocol: {hits}"


def test_the_bottom_layer_imports_nothing_above_it():
    bottom = [ROOT / "reports" / "model.py", ROOT / "conformance" / "requirements" / "__init__.py"]
    for path in bottom:
        above = {m for m in imports(path) if m.split(".")[0] in ("fixtures", "tests", "benchmarks")}
        above |= {m for m in imports(path) if m.startswith("reports.") and m != "reports.model"}
        assert not above, f"{path.name} imports {above}"


def test_the_reports_never_import_the_harness():
    for path in python_files("reports"):
        harness = {m for m in imports(path) if m.split(".")[0] == "fixtures"}
        assert not harness, f"{path.relative_to(ROOT)} imports {harness}: results come through the harness's hooks"
