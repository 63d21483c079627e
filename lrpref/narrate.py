"""The tutorials as scripts and as notebooks.

Each tutorial is one file in jupytext's "percent" format: ``# %%`` starts a code cell, ``# %% [markdown]`` a
cell of prose written as comments. Jupyter with jupytext (``pip install ".[tutorials]"``) opens the file as a
notebook and shows the prose; ``python tutorial.py`` runs it as a script, where :func:`narrate` prints the
prose as well, each markdown cell before the code that follows it.
"""
import argparse
import os
import sys
from pathlib import Path

_narrating = False


def cells(text):
    """The cells of a percent-format script: ``(kind, first_line, text)`` with kind "markdown" or "code"."""
    found, kind, start, lines = [], "code", 0, []
    for number, line in enumerate(text.splitlines()):
        if line.startswith("# %%"):
            found.append((kind, start, lines))
            kind, start, lines = ("markdown" if "[markdown]" in line else "code"), number + 1, []
        else:
            lines.append(line)
    found.append((kind, start, lines))
    return [(kind, start, "\n".join(lines)) for kind, start, lines in found if "".join(lines).strip()]


def prose(markdown):
    """A markdown cell's comment lines as plain text (``# `` removed)."""
    return "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in markdown.splitlines()).strip()


def in_notebook():
    """Whether this runs in a Jupyter kernel."""
    return "ipykernel" in sys.modules


def script_args():
    """The command-line arguments of a script run; none in a notebook (the kernel's own are not for us)."""
    return [] if in_notebook() else sys.argv[1:]


def arguments(weights=None):
    """A tutorial's command line: ``[OUTPUT_FOLDER]``, and ``--weights FILE`` described by ``weights`` where given.
    In a notebook, none are read (see :func:`script_args`)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("output", nargs="?", help="where the figures go (default: tutorial_output)")
    if weights:
        parser.add_argument("--weights", help=weights)
    return parser.parse_args(script_args())


def network_title(args, network, consequence):
    """What figure titles call the network: its name, or, where no ``--weights`` was given, a name that says its
    weights are random, which is also said once at run time (with ``consequence``: what it means here)."""
    if args.weights:
        return network
    print(f"RANDOM WEIGHTS: this {network} is untrained. {consequence} Pass --weights FILE for a trained network.")
    return f"{network} with RANDOM weights (not trained)"


def output_folder(args, default="tutorial_output"):
    """The folder a tutorial writes to: ``args.output`` where given on the command line, else
    ``$LRPREF_TUTORIAL_OUTPUT`` (how the tests point a notebook elsewhere), else ``default``; created."""
    folder = Path(getattr(args, "output", None) or os.environ.get("LRPREF_TUTORIAL_OUTPUT") or default)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def here(namespace):
    """The tutorial's folder: the script's, or in a notebook the working folder (Jupyter's is the notebook's)."""
    path = namespace.get("__file__")
    return Path(path).resolve().parent if path else Path.cwd()


def narrate(namespace):
    """Call first thing in a tutorial, as ``narrate(globals())``.

    Run as ``python tutorial.py``, it runs the file's cells in order in ``namespace``, printing every markdown
    cell as text before the code after it, and exits. In a notebook, or when imported, it returns at once.
    """
    global _narrating
    path = namespace.get("__file__")
    if _narrating or in_notebook() or namespace.get("__name__") != "__main__" or path is None:
        return
    _narrating = True
    for kind, start, text in cells(Path(path).read_text()):
        if kind == "markdown":
            print("\n" + prose(text) + "\n", flush=True)
        else:   # leading newlines keep the file's line numbers in tracebacks
            exec(compile("\n" * start + text, path, "exec"), namespace)
    sys.exit(0)
