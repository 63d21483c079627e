"""Golden reference vectors: ``lrpref reference export`` and ``check``.

The stored vectors are checked against independent computations that read the file with h5py alone, as
another implementation would: the formula twins of tests/naive.py on the MLP, and Zennit on the CNN (whose
answers go through ``lrpref reference check`` as a file in the documented schema).
"""
import json

import h5py
import numpy as np
import pytest
import torch
from zennit.attribution import Gradient
from zennit.composites import EpsilonAlpha2Beta1, EpsilonAlpha2Beta1Flat, EpsilonGammaBox, EpsilonPlus, \
    EpsilonPlusFlat

import naive
import reference_torch
import torch_models
from lrpref import Stabilizer, cli, composites, conventions, io, reference


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    path = tmp_path_factory.mktemp("reference") / "reference.h5"
    reference.export(path, progress=False)
    return path


def relevance_datasets(path):
    with h5py.File(path) as f:
        return sum(len(case["relevance"]) for net in f["networks"].values() for case in net["cases"].values())


def test_the_suite_covers_every_composite_and_convention(suite):
    with h5py.File(suite) as f:
        assert f.attrs["format"] == "lrpref-reference" and f.attrs["format_version"] == 1
        assert sorted(f["networks"]) == sorted(reference.NETWORKS)
        cases = [case for net in f["networks"].values() for case in net["cases"].values()]
        assert {c.attrs["composite"] for c in cases} == set(composites.COMPOSITES)
        used = {json.loads(c.attrs["params"]).get("convention") for c in cases}
        assert set(conventions.CONVENTIONS) <= used
        assert {c.attrs["method"] for c in cases} == {"lrp", "clrp", "sglrp"}
        analyzers = {json.loads(c.attrs["params"]).get("analyzer") for c in cases}
        assert set(composites.INNVESTIGATE) <= analyzers
        for net in f["networks"].values():   # relevance at every layer of every plain LRP case
            tensors = {"input"} | {node.attrs["name"] for node in net["model/nodes"].values()}
            for case in net["cases"].values():
                expected = tensors if case.attrs["method"] == "lrp" else {"input"}
                assert set(case["relevance"]) == expected
                assert case["relevance/input"].shape == net["input"].shape
                assert case["init"].shape == net["output"].shape and case["target"].shape == (len(net["input"]),)


def test_a_file_checked_against_itself_agrees_exactly(suite):
    report = reference.check(suite, suite)
    assert report.ok and len(report.rows) == relevance_datasets(suite)
    assert max(row.max_abs for row in report.rows) == 0.0


def read_dense_model(group):
    """The MLP's (W, b) pairs from the file, with h5py alone."""
    nodes = [group[f"model/nodes/{key}"] for key in sorted(group["model/nodes"])]
    return [(node["weight"][()], node["bias"][()]) for node in nodes if node.attrs["type"] == "Dense"]


NAIVE_MLP = {   # case: the rule of every Dense layer, as a function of (a, W, b, R)
    "lrp0": lambda a, W, b, R: naive.rule_general(a, W, b, R, lambda p: p, Stabilizer(1e-6))[0],
    "epsilon-0.25": lambda a, W, b, R: naive.rule_general(a, W, b, R, lambda p: p, Stabilizer(0.25))[0],
    "alpha2_beta1": lambda a, W, b, R: naive.rule_alpha_beta(a, W, b, R, 2.0, 1.0, Stabilizer(1e-6))[0],
    "alpha1_beta0-zero_bias": lambda a, W, b, R: naive.rule_alpha_beta(a, W, None, R, 1.0, 0.0, Stabilizer(1e-6))[0],
}


@pytest.mark.parametrize("case", NAIVE_MLP)
def test_mlp_vectors_equal_the_formulas(suite, case):
    with h5py.File(suite) as f:
        group = f["networks/mlp"]
        dense, x = read_dense_model(group), group["input"][()]
        init = group[f"cases/{case}/init"][()]
    answers = []
    for a0, R in zip(x, init):
        activations = [a0]
        for W, b in dense[:-1]:
            activations.append(np.maximum(W @ activations[-1] + b, 0))
        for (W, b), a in zip(dense[::-1], activations[::-1]):
            R = NAIVE_MLP[case](a, W, b, R)
        answers.append(R)
    report = reference.check(suite, {f"mlp/{case}": {"input": np.array(answers)}}, input_only=True)
    assert report.ok and len(report.rows) == 1


# -- Zennit's answers for the CNN, as a file in the schema --------------------------------------------------------

ZENNIT_COMPOSITES = {   # lrpref's name: Zennit's composite, with the CNN's zB bounds
    "epsilon_gamma_box": lambda: EpsilonGammaBox(low=-1.0, high=1.0),
    "epsilon_plus": EpsilonPlus,
    "epsilon_plus_flat": EpsilonPlusFlat,
    "epsilon_alpha2_beta1": EpsilonAlpha2Beta1,
    "epsilon_alpha2_beta1_flat": EpsilonAlpha2Beta1Flat,
}


def zennit_answers(suite, case, composite="epsilon_plus"):
    """Zennit's composite on the CNN built from the file by weights/reference_torch.py (h5py alone), seeded with the
    case's stored init: the relevance of every layer's output, named as the file names them."""
    model, names, x = reference_torch.build(suite, "cnn")
    with h5py.File(suite) as f:
        init = f[f"networks/cnn/cases/{case}/init"][()]
    captured, _ = torch_models.capture_output_gradients(dict(zip(names, model)))
    with Gradient(model, ZENNIT_COMPOSITES[composite]()) as attributor:
        _, relevance = attributor(torch.from_numpy(x).requires_grad_(True), torch.from_numpy(init))
    return {"input": relevance.detach().numpy(), **captured}


@pytest.mark.parametrize("composite", ZENNIT_COMPOSITES)
def test_zennit_passes_every_zennit_convention_case_at_every_layer(suite, composite):
    """Every Zennit composite has a case with Zennit's max-pool convention (``-maxpool_gradient``) that Zennit
    passes at every layer, through the CNN's tied maxima, at the default tolerance (1e-9 relative: float64
    rounding on a well-conditioned 9x9 network is about 1e-15)."""
    case = f"{composite}-maxpool_gradient"
    answers = zennit_answers(suite, case, composite)
    report = reference.check(suite, {f"cnn/{case}": answers})
    assert report.ok and len(report.rows) == len(answers) == 14


def write_theirs(path, answers):
    """A file in the reference schema holding ``{"<network>/<case>": {tensor: array}}``."""
    with h5py.File(path, "w") as f:
        f.attrs.update(format="lrpref-reference", format_version=1)
        for key, tensors in answers.items():
            network, case = key.split("/")
            for tensor, R in tensors.items():
                f[f"networks/{network}/cases/{case}/relevance/{tensor}"] = R


def test_zennit_answers_pass_the_check_and_ties_are_caught(suite, tmp_path, capsys):
    """Zennit sends a tied maximum's relevance to the first one: it agrees with the case
    ``epsilon_plus-maxpool_gradient`` at every layer, and differs from ``epsilon_plus`` (ties split) from the first
    max pool down, which ``check`` reports layer by layer with exit status 1."""
    answers = zennit_answers(suite, "epsilon_plus-maxpool_gradient")
    theirs = tmp_path / "zennit.h5"
    write_theirs(theirs, {"cnn/epsilon_plus-maxpool_gradient": answers})
    assert cli.main(["reference", "check", str(suite), str(theirs), "--every-layer"]) == 2   # one case of many
    assert "answers 1 of the reference's" in capsys.readouterr().err
    assert cli.main(["reference", "check", str(suite), str(theirs), "--every-layer", "--allow-partial"]) == 0
    out = capsys.readouterr().out
    assert f"{len(answers)} datasets in 1 cases compared; 0 above" in out and "cases not answered (skipped)" in out

    write_theirs(theirs, {"cnn/epsilon_plus": answers})   # the same arrays, as answers for the ties-split case
    assert cli.main(["reference", "check", str(suite), str(theirs), "--allow-partial"]) == 1
    failed = {row.tensor for row in reference.check(suite, theirs).failed}
    assert failed == {"input"}   # the input of the max pool, layer 0, is the only tensor the ties reach
    assert "FAIL" in capsys.readouterr().out


def test_export_cli_and_a_subset_of_networks(tmp_path, capsys):
    path = tmp_path / "mlp.h5"
    assert cli.main(["reference", "export", str(path), "--networks", "mlp"]) == 0
    assert "cases, float64" in capsys.readouterr().out
    with h5py.File(path) as f:
        assert list(f["networks"]) == ["mlp"]
    with pytest.raises(ValueError, match=r"unknown reference network\(s\) \['vgg'\]"):
        reference.export(tmp_path / "x.h5", ["vgg"])


# -- bad input ----------------------------------------------------------------------------------------------------

def test_check_names_the_dataset_that_is_missing_or_misshapen(suite, tmp_path):
    with h5py.File(suite) as f:
        expected = {t: d[()] for t, d in f["networks/mlp/cases/lrp0/relevance"].items()}
    theirs = tmp_path / "theirs.h5"
    write_theirs(theirs, {"mlp/lrp0": {t: R for t, R in expected.items() if t != "2"}})
    with pytest.raises(ValueError, match=r"/networks/mlp/cases/lrp0/relevance/2: missing from the file checked"):
        reference.check(suite, theirs)
    assert reference.check(suite, theirs, input_only=True).ok   # the input alone is enough with input_only
    write_theirs(theirs, {"mlp/lrp0": {**expected, "2": expected["2"][:, :-1]}})
    with pytest.raises(ValueError, match=r"relevance/2: shape \(3, 4\), the reference's is \(3, 5\)"):
        reference.check(suite, theirs)
    write_theirs(theirs, {"mlp/no-such-rule": expected})
    with pytest.raises(ValueError, match="/networks/mlp/cases/no-such-rule: no such case in the reference"):
        reference.check(suite, theirs)


def test_check_refuses_another_format_or_version(suite, tmp_path, capsys):
    theirs = tmp_path / "theirs.h5"
    with h5py.File(theirs, "w") as f:
        f.attrs.update(format="lrpref-reference", format_version=2)
    with pytest.raises(ValueError, match=r"theirs.h5 \(checked\): format_version 2; this lrpref reads version 1"):
        reference.check(suite, theirs)
    with h5py.File(theirs, "w") as f:
        f.attrs["format"] = "something else"
    assert cli.main(["reference", "check", str(suite), str(theirs)]) == 2
    assert "the root attribute 'format' is not 'lrpref-reference'" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"\(reference\): the root attribute 'format'"):
        reference.check(theirs, suite)
    with pytest.raises(FileNotFoundError, match="no such file to check: .*absent.h5"):
        reference.check(suite, tmp_path / "absent.h5")


def test_nan_and_perturbed_answers_fail(suite):
    with h5py.File(suite) as f:
        expected = {t: d[()] for t, d in f["networks/cnn/cases/gamma/relevance"].items()}
    perturbed = {**expected, "1": expected["1"] * (1 + 1e-6)}
    report = reference.check(suite, {"cnn/gamma": perturbed})
    assert [row.tensor for row in report.failed] == ["1"] and 5e-7 < report.failed[0].relative < 2e-6
    nan = {**expected, "input": np.where(expected["input"] == expected["input"].max(), np.nan, expected["input"])}
    assert [row.tensor for row in reference.check(suite, {"cnn/gamma": nan}).failed] == ["input"]


# -- the LRP Toolbox network: its convention's cases against the formula-literal twins of its rules ---------------

TOOLBOX_CASES = {   # case: the Toolbox's lrp_var and param
    "lrp0-toolbox": ("simple", None), "epsilon-0.25-toolbox": ("epsilon", 0.25),
    "alpha2_beta1-toolbox": ("alphabeta", 2.0), "alpha1_beta0-toolbox": ("alphabeta", 1.0),
    "flat-toolbox": ("flat", None), "wsquare-toolbox": ("ww", None),
}


@pytest.mark.parametrize("case", TOOLBOX_CASES)
def test_toolbox_vectors_equal_the_toolbox_formulas(suite, case):
    """Every layer of the toolbox_cnn cases against tests/naive.py's Toolbox rules (tests/test_toolbox.py's
    driver), the network read back from the file's model group."""
    from test_toolbox import twin_relevances
    with h5py.File(suite) as f:
        group = f["networks/toolbox_cnn"]
        net, x, init = io.read(group["model"], dtype="float64"), group["input"][()], group[f"cases/{case}/init"][()]
    twins = twin_relevances(net, x, init, *TOOLBOX_CASES[case])
    answers = {"input": twins[0], **dict(zip(net.names, twins[1:] + [init]))}   # a layer's output: the next's input
    report = reference.check(suite, {f"toolbox_cnn/{case}": answers}, tolerance=1e-12)
    assert report.ok and len(report.rows) == len(net) + 1
