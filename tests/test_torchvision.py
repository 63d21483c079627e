"""torchvision VGG and ResNet through weights/export_torchvision.py, against PyTorch, full size.

The reference models are the export script's plain-PyTorch architectures, which carry torchvision's module
names (their state dicts load into torchvision's models key for key; checked against torchvision 0.29,
see tutorials/guides/models.md). Tolerances come from the logits' measured condition (tests/precision.py): two float32 forward
passes of the same float32 weights differ by at most twice precision.float32_bound, two float64 ones by
precision.float64_difference; the forward pass is continuous, so ReLU and max-pool flips need no check.
"""
import functools

import numpy as np
import pytest
import torch

import export_torchvision
import lrpref
import precision
from lrpref.backend import to_host

ARCHS = ["vgg16", "vgg16_bn", "resnet18", "resnet34", "resnet50", "resnet101"]


def randomise_batchnorm(model, seed):
    """Random BatchNorm parameters and statistics, so that the tests see them."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=generator))
                m.bias.copy_(0.1 * torch.randn(c, generator=generator))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=generator))
                m.running_var.copy_(0.5 + torch.rand(c, generator=generator))
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    @functools.lru_cache(maxsize=None)   # each architecture exported once
    def get(arch):
        folder = tmp_path_factory.mktemp(arch)
        torch.manual_seed(0)
        model = randomise_batchnorm(export_torchvision.torch_model(arch), 0)
        torch.save(model.state_dict(), folder / "state.pth")
        export_torchvision.main([arch, str(folder / "net.h5"), "--state-dict", str(folder / "state.pth")])
        return model, folder / "net.h5"
    return get


def images(dtype):
    x = np.random.default_rng(1).uniform(0, 1, size=(2, 3, 224, 224))
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    return ((x - mean[:, None, None]) / std[:, None, None]).astype(dtype)


@pytest.mark.parametrize("arch", ARCHS)
def test_logits_equal_pytorch(exported, arch):
    model, path = exported(arch)
    x32, x64 = images(np.float32), images(np.float64)
    with torch.no_grad():
        ref32 = model.float()(torch.from_numpy(x32)).numpy()
        ref64 = model.double()(torch.from_numpy(x64)).numpy()
    net = getattr(lrpref.models, arch)(weights=path, dtype="float64")
    condition = precision.forward_condition(lambda: lrpref.load(path, dtype="float64"), x64)
    net32 = lrpref.load(path)
    bound32 = 2 * precision.float32_bound(net32, condition)
    assert (precision.per_sample_error(net32.forward(x32), ref32) <= bound32).all()
    n = precision.longest_dot_product(net)
    assert (precision.per_sample_error(net.forward(x64), ref64) <= precision.float64_difference(n, condition)).all()
    assert net.meta["preprocessing"] == "torchvision" and net.meta["architecture"] == arch
    assert net.meta["composite"] == "epsilon_gamma_box"   # what `lrpref explain` uses for it


def test_node_names_are_torchvision_module_paths(exported):
    model, path = exported("resnet50")
    net = lrpref.load(path, dtype=None)
    state = model.state_dict()
    for node in net.nodes:
        for key, array in node.layer.arrays().items():
            name = f"{node.name}.{key}"
            expected = state[name].numpy() if name in state else 0.0   # torchvision's convolutions have no bias
            assert np.array_equal(to_host(array), np.broadcast_to(expected, array.shape)), name   # on the host
    block = net.nodes[net.names.index("layer2.0.add")]
    assert block.inputs == ("layer2.0.bn3", "layer2.0.downsample.1") and net["layer2.0.conv2"].stride == (2, 2)


def test_export_without_a_state_dict_is_the_seeded_random_initialisation(tmp_path):
    export_torchvision.main(["resnet18", str(tmp_path / "r18.h5"), "--seed", "3"])
    torch.manual_seed(3)
    model = export_torchvision.torch_model("resnet18")
    x = images(np.float32)
    with torch.no_grad():
        reference = model(torch.from_numpy(x)).numpy()
    net = lrpref.load(tmp_path / "r18.h5")
    bound = 2 * precision.float32_bound(net, precision.forward_condition(lambda: lrpref.load(tmp_path / "r18.h5",
                                                                                             dtype="float64"), x))
    assert (precision.per_sample_error(net.forward(x), reference) <= bound).all()


def export_error(capsys, *argv):
    """The one-line error and exit status of the export script run with ``argv``."""
    with pytest.raises(SystemExit) as stop:
        export_torchvision.main([str(a) for a in argv])
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return stop.value.code, lines[0]


def test_architecture_and_state_dict_mismatches_are_named(exported, tmp_path, capsys):
    _, path = exported("resnet18")
    with pytest.raises(ValueError, match="holds 'resnet18', not 'resnet34'"):
        lrpref.models.resnet34(weights=path)
    with pytest.raises(ValueError, match="the Keras layout needs a Keras weights file"):
        lrpref.models.resnet50(layout="keras")
    state = torch.load(path.parent / "state.pth")
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    torch.save(state, tmp_path / "bad.pth")
    status, line = export_error(capsys, "resnet18", tmp_path / "bad.h5", "--state-dict", tmp_path / "bad.pth")
    assert status == 2 and "'layer1.0.conv1.weight' has shape (64, 64, 1, 1), the architecture needs (64, 64, 3, 3)" in line
    assert not (tmp_path / "bad.h5").exists()


def test_the_export_matches_state_dicts_strictly(exported, tmp_path, capsys):
    """Extra, missing, prefixed and non-finite entries are each refused by name; the output is never written."""
    _, path = exported("resnet18")
    good = torch.load(path.parent / "state.pth")
    cases = {"extra": ({**good, "layer5.weight": torch.zeros(3)}, "unexpected entry 'layer5.weight'"),
             "missing": ({k: v for k, v in good.items() if k != "fc.bias"}, "missing entry 'fc.bias'"),
             "prefixed": ({f"module.{k}": v for k, v in good.items()}, "start with 'module.'"),
             "nan": ({**good, "fc.bias": torch.full((1000,), float("nan"))}, "entry 'fc.bias' is not finite")}
    for name, (state, expected) in cases.items():
        torch.save(state, tmp_path / f"{name}.pth")
        status, line = export_error(capsys, "resnet18", tmp_path / f"{name}.h5", "--state-dict", tmp_path / f"{name}.pth")
        assert status == 2 and line.startswith("export_torchvision.py: error: the state dict does not fit resnet18")
        assert expected in line, (name, line)
        assert not (tmp_path / f"{name}.h5").exists()
    status, line = export_error(capsys, "resnet18", path.parent / "state.pth", "--state-dict", path.parent / "state.pth")
    assert status == 2 and "is also an input" in line


def test_random_networks_without_a_file():
    """No file: random weights in torchvision's layout, with its preprocessing recorded."""
    net = lrpref.models.resnet18(seed=1)
    assert net.dtype == np.float32 and net.meta["preprocessing"] == "torchvision"
    assert net.forward(images(np.float32)).shape == (2, 1000)


def test_an_unreadable_state_dict_or_output_is_one_line(tmp_path, capsys):
    """torch.load's many-line refusal becomes one line; a missing output folder is found before the state is read."""
    (tmp_path / "notes.pth").write_text("not a pickle")
    status, line = export_error(capsys, "resnet18", tmp_path / "o.h5", "--state-dict", tmp_path / "notes.pth")
    assert status == 2 and line == (f"export_torchvision.py: error: {tmp_path / 'notes.pth'} is not a state dict saved "
                                    "with torch.save (torch.load: Weights only load failed)")
    status, line = export_error(capsys, "resnet18", tmp_path / "nowhere" / "o.h5", "--state-dict",
                                tmp_path / "none.pth")
    assert status == 2 and line.endswith(f"cannot write {tmp_path / 'nowhere' / 'o.h5'}: the folder "
                                         f"{tmp_path / 'nowhere'} does not exist")
