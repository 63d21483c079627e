"""The documentation runs: every ```python snippet in README.md and tutorials/guides/*.md executes, and every
relative link (file and heading) resolves.

A snippet that cannot run on its own is marked on the line before it with ``<!-- not run: REASON -->``; the
reason is required. A page's snippets run in order in one namespace (a later one may use an earlier one's
names), in a temporary folder that links to the repository's weights/, tests/ and tutorials/, so that they run
as from the repository root and the files they write go there.
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "tutorials" / "guides").glob("*.md"))]
SNIPPET = re.compile(r"(?:<!-- not run: (?P<reason>[^>]*?) -->\n)?```python\n(?P<code>.*?)```", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")

# Pages other issues write, linked from the README before they land on this branch (issues 11, 12, 13). A link
# to one of them is only allowed to be missing while the page does not exist; once it exists it is checked.
WRITTEN_ELSEWHERE = {"tutorials/guides/errors.md", "tutorials/guides/toolbox.md",
                     "tutorials/guides/dataset_scale.md", "tutorials/05_conventions"}


def page_id(page):
    return str(page.relative_to(ROOT))


def snippets(page):
    return [(m["code"], m["reason"]) for m in SNIPPET.finditer(page.read_text())]


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}


def test_every_page_is_checked_and_skips_say_why():
    assert len(PAGES) > 5
    for page in PAGES:
        for _, reason in snippets(page):
            assert reason is None or reason.strip(), f"{page_id(page)}: a snippet marked 'not run' needs a reason"


@pytest.mark.parametrize("page", [p for p in PAGES if any(r is None for _, r in snippets(p))], ids=page_id)
def test_python_snippets_run(page, tmp_path, monkeypatch):
    for folder in ("weights", "tests", "tutorials"):   # the snippets run as from the repository root
        (tmp_path / folder).symlink_to(ROOT / folder)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for code, reason in snippets(page):
        if reason is None:
            exec(compile(code, str(page), "exec"), namespace)


def test_the_readme_example_writes_the_front_page_picture(tmp_path, monkeypatch):
    """The picture on the front page is what its example writes: same file name, same size in pixels."""
    from PIL import Image
    monkeypatch.chdir(tmp_path)
    code = snippets(ROOT / "README.md")[0][0]
    exec(compile(code, "README.md", "exec"), {"__name__": "__docs__"})
    shown = re.search(r"!\[[^\]]*\]\(([^)]+)\)", (ROOT / "README.md").read_text()).group(1)
    assert Path(shown).name == "digits.png" and (tmp_path / "digits.png").exists()
    assert Image.open(ROOT / shown).size == Image.open(tmp_path / "digits.png").size
    assert (ROOT / shown).stat().st_size < 100_000


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(re.sub(r"```.*?```", "", page.read_text(), flags=re.S)):
        if re.match(r"[a-z]+:", target):
            continue   # http(s), mailto: not fetched in tests
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            if str(file.relative_to(ROOT)).rstrip("/") not in WRITTEN_ELSEWHERE:
                broken.append(target)
            continue
        if anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(target)
    assert not broken, f"{page_id(page)}: links that do not resolve: {broken}"


def test_explain_docstring_and_cli_help_name_every_convention():
    """Lists of conventions written out in prose drift when one is added; these two once named two of four."""
    import lrpref
    from lrpref import cli, conventions
    help_text = " ".join(cli.build_parser()._subparsers._group_actions[0].choices["explain"].format_help().split())
    for name in conventions.CONVENTIONS:
        assert f'"{name}"' in lrpref.explain.__doc__, name
        assert name in help_text.split("what the numbers mean:")[1].split("(default")[0], name
