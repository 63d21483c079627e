"""float32 work stays float32: every rule, composite, convention and contrastive method of the reference suite,
on networks with every kind of layer, checked at every matrix product and in every array of the result."""
import numpy as np
import pytest

from lrpref import backend, reference


def checked(method, where):
    """``method`` asserting that its array arguments and its result are float32."""
    def check(*args, **kwargs):
        for value in args:
            if hasattr(value, "dtype"):
                assert value.dtype == np.float32, f"{where}: an argument of dtype {value.dtype}"
        result = method(*args, **kwargs)
        assert result.dtype == np.float32, f"{where}: a result of dtype {result.dtype}"
        return result
    return check


def arrays(value):
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in arrays(v)]
    if isinstance(value, dict):
        return arrays(list(value.values()))
    return [] if value is None else [value]


@pytest.mark.parametrize("network", list(reference.NETWORKS))
def test_float32_stays_float32_through_every_case(network, xp):
    net, x, _ = reference.NETWORKS[network](np.random.default_rng(0))
    net = net.astype("float32").to(backend.name(xp))
    for node in net.nodes:
        for name in ("forward", "linear", "transpose"):
            if hasattr(node.layer, name):
                setattr(node.layer, name, checked(getattr(node.layer, name), f"{node.name}.{name}"))
    x = xp.asarray(x, dtype=np.float32)
    for case in reference.cases(network, net):
        result = case.run(net, x)
        explanations = [result] if case.method == "lrp" else [result, result.primary] + \
            ([result.dual] if result.dual is not None else [])
        for e in explanations:
            values = arrays([e.relevance, e.output, e.init] + ([e.layers, e.tensors] if hasattr(e, "tensors") else []))
            assert values and all(v.dtype == np.float32 for v in values), case.name
