"""The README's set-up commands and examples are what the project runs."""
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


def test_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert len(blocks) >= 2
    for block in blocks[:2]:   # the usage examples; the third block is the four-step excerpt of rules.py
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["e"].relevance.shape == (2, 3, 32, 32) and (tmp_path / "net.h5").exists()


def test_a_non_editable_install_gets_every_subpackage():
    """``pip install .`` (the first set-up command) copies only the packages pyproject.toml lists."""
    packages = re.search(r"^packages = \[(.*?)\]", (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    listed = set(re.findall(r'"([^"]+)"', packages))
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "lrpref").rglob("__init__.py")}
    assert found <= listed, f"subpackages missing from [tool.setuptools] packages: {sorted(found - listed)}"
