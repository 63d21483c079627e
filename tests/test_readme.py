"""The README's set-up commands are what the project runs (its snippets and links: tests/test_docs.py)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def setup_commands():
    """The indented command block that opens the README (after the title and the first paragraph)."""
    block = re.search(r"\n\n((?:    .+\n)+)", README).group(1)
    return [line.strip() for line in block.splitlines()]


def test_readme_opens_with_two_setup_commands_and_ci_runs_the_second():
    install_and_run, install_and_test = setup_commands()
    assert install_and_run.endswith("lrpref explain") and "pip install" in install_and_run
    assert '".[test]"' in install_and_test and install_and_test.endswith("pytest")
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", "set", "cd"))]
    assert ci == [install_and_test]


def test_a_non_editable_install_gets_every_subpackage():
    """``pip install .`` (the first set-up command) copies only the packages pyproject.toml lists."""
    packages = re.search(r"^packages = \[(.*?)\]", (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    listed = set(re.findall(r'"([^"]+)"', packages))
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "lrpref").rglob("__init__.py")}
    assert found <= listed, f"subpackages missing from [tool.setuptools] packages: {sorted(found - listed)}"
