"""The CuPy path against NumPy: CuPy on a GPU machine, else the strict stand-in (tests/standin/cupy).

On the stand-in both backends compute with NumPy, so results are bit-identical: any difference is a path that
treats device arrays differently (a host round trip, a NumPy function, a forgotten ``to_host``). On a GPU the
BLAS summation orders differ; there the comparison is where discrete choices agree, to float64 rounding.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import precision
from conftest import HAS_GPU, STANDIN
from lrpref import backend, composites, contrastive, data, evaluation, explain, heatmap, load, preprocessing, reference
from lrpref.network import fold_batchnorm

cp = backend.resolve("cupy")
FLOAT64_ROUNDING = 1e-12 if HAS_GPU else 0.0   # another BLAS on the GPU; the stand-in computes with NumPy itself


def agree(device, host, same=None):
    """Every sample (or those in ``same``) of ``device`` equals ``host`` to FLOAT64_ROUNDING."""
    assert isinstance(device, cp.ndarray)
    error = precision.per_sample_error(device, host)
    return bool((error if same is None else error[same]).max(initial=0.0) <= FLOAT64_ROUNDING)


@pytest.mark.parametrize("network", list(reference.NETWORKS))
def test_every_reference_case_on_cupy_equals_numpy(network):
    """Every rule, composite, convention, ResNet split and contrastive method of the golden-vector suite."""
    net, x, _ = reference.NETWORKS[network](np.random.default_rng(0))
    net = net.astype("float64").to("numpy")
    on_gpu = load_copy(net, "cupy")
    x_gpu = cp.asarray(x)
    same = precision.same_choices(net, x, on_gpu, x_gpu)
    for case in reference.cases(network, net):
        host, device = case.run(net, x), case.run(on_gpu, x_gpu)
        assert agree(device.relevance, host.relevance, same), case.name


def load_copy(net, backend_name):
    """``net`` moved to another backend (a copy: ``to`` moves in place)."""
    from lrpref import Network
    return Network(net.nodes, net.input_shape, net.meta).to(backend_name)


@pytest.mark.parametrize("name", data.MODELS)
def test_shipped_models_every_composite(name):
    host = load(data.model_path(name), dtype="float64", backend="numpy")
    device = load(data.model_path(name), dtype="float64", backend="cupy")
    x = (data.mnist_pairs(4)[0] if name == "mnist_pairs_cnn" else data.mnist_sample()[0][:4])
    same = precision.same_choices(host, x, device, cp.asarray(x))
    for composite in sorted(composites.COMPOSITES):
        try:
            expected = explain(host, x, composite=composite)
        except ValueError:   # a composite that does not apply to this network (e.g. otsuki2024 without skips)
            with pytest.raises(ValueError):
                explain(device, cp.asarray(x), composite=composite)
            continue
        assert agree(explain(device, cp.asarray(x), composite=composite).relevance, expected.relevance, same), composite


def test_the_environment_variable_never_moves_a_network(monkeypatch):
    """LRPREF_BACKEND is a default for new networks from host data; networks derived inside lrpref (BatchNorm
    folding, CLRP2's negated layer) keep the backend of the network they come from."""
    monkeypatch.setenv(backend.ENV_VAR, "numpy")
    net = load(data.model_path("mnist_cnn"), dtype="float64", backend="cupy")
    assert net.xp is cp and fold_batchnorm(net).xp is cp and contrastive.negate_last_layer(net).xp is cp
    x = cp.asarray(data.mnist_sample()[0][:2])
    assert isinstance(explain(net, x).relevance, cp.ndarray)
    assert isinstance(contrastive.clrp(net, x, variant=2).relevance, cp.ndarray)
    monkeypatch.setenv(backend.ENV_VAR, "cupy")
    assert load(data.model_path("mnist_cnn")).xp is cp                  # a new network: the default applies
    assert load(data.model_path("mnist_cnn"), backend="numpy").xp is np  # an explicit choice wins
    assert fold_batchnorm(load(data.model_path("mnist_cnn"), backend="numpy")).xp is np


def test_host_functions_take_device_arrays(tmp_path):
    """Metrics, preprocessing, heatmaps, reference checks and subsets accept device arrays; results that are
    files, numbers or pictures come back on the host, network input stays on the caller's backend."""
    net = load(data.model_path("mnist_cnn"), dtype="float64", backend="numpy")
    gpu = load(data.model_path("mnist_cnn"), dtype="float64", backend="cupy")
    x = data.mnist_sample()[0][:3]
    e_host, e_gpu = explain(net, x), explain(gpu, cp.asarray(x))
    maps_host, maps_gpu = evaluation.relevance_maps(e_host.relevance), e_gpu.relevance.sum(axis=1)
    images = (x + 1) / 2
    spec = preprocessing.of(net)
    normalized = spec.normalize(cp.asarray(images))
    assert isinstance(normalized, cp.ndarray) and agree(normalized, spec.normalize(images))
    assert (spec.pixels(cp.asarray(x[0])) == spec.pixels(x[0])).all()
    np.testing.assert_array_equal(evaluation.heat_quantization(maps_gpu), evaluation.heat_quantization(maps_host))
    masks = maps_host > 0
    np.testing.assert_array_equal(evaluation.relevance_mass_accuracy(maps_gpu, cp.asarray(masks)),
                                  evaluation.relevance_mass_accuracy(maps_host, masks))
    labels = e_host.target
    a = evaluation.insertion_deletion(gpu, cp.asarray(images), maps_gpu, cp.asarray(labels), step=98)
    b = evaluation.insertion_deletion(net, images, maps_host, labels, step=98)
    np.testing.assert_array_equal(a.insertion, b.insertion)
    a = evaluation.pixel_flipping(gpu, cp.asarray(images), maps_gpu, cp.asarray(labels), patch=7, steps=5)
    np.testing.assert_array_equal(a.curves, evaluation.pixel_flipping(net, images, maps_host, labels, patch=7, steps=5).curves)
    rows = cp.asarray(np.array([2, 0]))
    sub = e_gpu.subset(rows)
    assert agree(sub.relevance, e_host.subset([2, 0]).relevance) and (sub.target == e_host.target[[2, 0]]).all()
    for path, panels in ((tmp_path / "gpu.png", [heatmap.relevance_rgb(e_gpu.relevance[0, 0]), spec.pixels(cp.asarray(x[0]))]),
                         (tmp_path / "cpu.png", [heatmap.relevance_rgb(e_host.relevance[0, 0]), spec.pixels(x[0])])):
        heatmap.save_panels(path, [backend.to_host(p) if i else p for i, p in enumerate(panels)])
    assert np.array_equal(np.asarray(Image.open(tmp_path / "gpu.png")), np.asarray(Image.open(tmp_path / "cpu.png")))
    heatmap.save_panels(tmp_path / "device-panels.png", [cp.asarray(spec.pixels(x[0]))])
    scale = heatmap.tutorial_scale(e_host.relevance)
    assert abs(heatmap.tutorial_scale(e_gpu.relevance) - scale) <= FLOAT64_ROUNDING * scale


def test_reference_export_and_check_on_cupy(tmp_path, monkeypatch):
    monkeypatch.setenv(backend.ENV_VAR, "cupy")
    assert reference.export(tmp_path / "ref.h5", networks=["mlp"], progress=False) > 0
    net, x, _ = reference.NETWORKS["mlp"](np.random.default_rng(sorted(reference.NETWORKS).index("mlp")))
    assert net.xp is cp
    answers = {f"mlp/{case.name}": {"input": case.run(net, cp.asarray(x)).relevance}
               for case in reference.cases("mlp", net)}
    report = reference.check(tmp_path / "ref.h5", answers, input_only=True)
    assert report.rows and all(row.ok for row in report.rows)


def test_the_cli_on_cupy(tmp_path):
    """``lrpref explain --backend cupy`` writes the same heatmap as NumPy, in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [STANDIN, os.environ.get("PYTHONPATH")]))}
    env.pop(backend.ENV_VAR, None)
    for name in ("numpy", "cupy"):
        result = subprocess.run([sys.executable, "-m", "lrpref.cli", "explain", "--model", "mnist_cnn", "--backend",
                                 name, "--dtype", "float64", "--output", str(tmp_path / f"{name}.png")],
                                capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr
    if not HAS_GPU:
        assert (tmp_path / "numpy.png").read_bytes() == (tmp_path / "cupy.png").read_bytes()


def test_the_gpu_check_runs_as_it_is():
    """``benchmarks/gpu_check.py``, the one command for a GPU, runs its agreement part (here on the stand-in, on two
    networks: the whole of it is what the tests above check) and refuses a network it does not know."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
    result = subprocess.run([sys.executable, str(script), "--standin", "--networks", "mlp", "mnist_mlp"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith(("reference/mlp", "mnist_mlp"))]
    assert [row[0] for row in rows] == ["reference/mlp", "mnist_mlp"] and all(row[-1] == "ok" for row in rows)
    assert "part 1: 0 disagreeing case(s)" in result.stdout
    result = subprocess.run([sys.executable, str(script), "--standin", "--networks", "vgg99"], capture_output=True,
                            text=True)
    assert result.returncode == 2 and "unknown network(s) ['vgg99']; choose from" in result.stderr


def test_synchronisations_per_explanation_are_bounded():
    """Device-to-host synchronisations and uploads of one explanation do not grow with depth: a budget that is
    the same for a 10-layer CNN and ResNet18 (the stand-in counts them; nothing to count on a real GPU)."""
    if HAS_GPU:
        pytest.skip("transfers are counted by the stand-in; on a GPU machine the real CuPy runs this file")
    from lrpref import models
    counts = {}
    for name, net, x in (("cnn", load(data.model_path("mnist_cnn"), dtype="float64", backend="cupy"),
                          data.mnist_sample()[0][:2]),
                         ("resnet18", models.build("resnet18", dtype="float64", backend="cupy"),
                          np.random.default_rng(0).normal(size=(1, 3, 64, 64)))):
        x = cp.asarray(x)
        for composite in ("epsilon_gamma_box", "epsilon_plus", "epsilon_alpha2_beta1"):
            explain(net, x, composite=composite)   # the first call uploads the constants (bounds, pool matrices)
            cp.reset_counters()
            explain(net, x, composite=composite)
            counts[name, composite] = dict(cp.counters)
    # to host: the input's finiteness check, the predicted class, the sign facts of all sign-split layers, the
    # relevance's finiteness check; to device: nothing (the constants are cached)
    for key, count in counts.items():
        assert count["to_host"] <= 4 and count["to_device"] == 0, (key, count)
