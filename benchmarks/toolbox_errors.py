"""The worst relative error, per LRP Toolbox rule, over every layer of every case the Toolbox stored.

    PYTHONPATH=. python benchmarks/toolbox_errors.py

Reads ../shared/peer-references/lrp-toolbox-1.3.1/toolbox_references.h5 the way tests/test_toolbox.py does
(``max |lrpref - Toolbox| / max |Toolbox|`` per layer) and prints three settings: the ``toolbox``
convention; the same with alpha-beta's ``z-`` stabilised by ``- 1e-16`` (Zennit's sign-aware stabilizer) instead
of the Toolbox's ``- 2e-16``; and the recipe the README gave before the convention existed (Zennit's convention
with ``stabilizer=1e-16``, flat and w-square with ``stabilizer=0``, pools under Zennit's rules).
"""
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "tests"))
import lrpref  # noqa: E402
from cases import relative_error  # noqa: E402
from test_toolbox import CASES, FILE, RULES, read_case, toolbox_layout  # noqa: E402


def worst(settings):
    """``{rule: (worst error, where)}``; ``settings(rule)`` gives the composite's extra parameters."""
    found = {}
    with h5py.File(FILE) as f:
        for net_name, case in CASES:
            g, spec, net, x = read_case(f, net_name, case)
            for rule, (_, _, composite, params) in RULES.items():
                try:
                    e = lrpref.explain(net, x, composite=composite, init=g["init"][()], **params, **settings(rule))
                except FloatingPointError:
                    found[rule] = (np.inf, f"{net_name}/{case}: FloatingPointError")
                    continue
                for i in range(len(spec)):
                    error = relative_error(toolbox_layout(e, spec, i), g["relevance"][rule][str(i)][()])
                    where = f"{net_name}/{case} module {i} ({spec[i][0]})"
                    found[rule] = max(found.get(rule, (0.0, "")), (error, where))
    return found


SETTINGS = {
    "convention='toolbox'": lambda rule: {"convention": "toolbox"},
    "convention='toolbox', alpha-beta with z- - 1e-16": lambda rule: {
        "convention": "toolbox", **({"stabilizer": 1e-16} if rule.startswith("alphabeta") else {})},
    "convention='zennit', the README's earlier recipe": lambda rule: (
        {"stabilizer": 0} if rule == "flat" else {"stabilizer": 0, "zero_bias": True} if rule == "ww"
        else {"stabilizer": 1e-16} if rule != "epsilon_0.01" and rule != "epsilon_1" else {}),
}

if __name__ == "__main__":
    for title, settings in SETTINGS.items():
        print(title)
        for rule, (error, where) in worst(settings).items():
            print(f"  {rule:<14} {error:9.2e}  {where}")
