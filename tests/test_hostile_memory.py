"""Bounded memory: explain in chunks gives the one-pass result bit for bit, and keep="input" holds only the input's
relevance. (Peak memory itself is measured by benchmarks/bench_memory.py, see benchmarks/RESULTS.md.)

Bit-identity holds because every product is computed per sample (Conv2d and Dense run one matrix product per
sample), so a sample's numbers never depend on how many others share its pass; a stabilizer relative to the
whole batch is the one coupling, and explain then runs one pass.
"""
import importlib

import numpy as np
import pytest

import lrpref
from lrpref import data, explain, load, windows
from lrpref.backend import to_host
from lrpref.contrastive import clrp

explain_module = importlib.import_module("lrpref.explain")   # the attribute lrpref.explain is the function


@pytest.fixture(scope="module")
def digits():
    x, _ = data.mnist_sample()
    return x[:12]


def equal(p, q):
    """Bit for bit, on the host (the network may live on CuPy: LRPREF_BACKEND=cupy)."""
    return np.array_equal(to_host(p), to_host(q))


def identical(a, b):
    """Every array of two explanations equal bit for bit (per-layer relevance too, where kept)."""
    pairs = [(a.relevance, b.relevance), (a.output, b.output), (a.init, b.init)]
    if a.layers is not None:
        pairs += [(p, q) for la, lb in zip(a.layers, b.layers)
                  for p, q in zip(la if isinstance(la, tuple) else (la,), lb if isinstance(lb, tuple) else (lb,))]
    sums = [(p, q) for sa, sb in zip(a._sums, b._sums) for p, q in zip(sa, sb) if p is not None]
    tensors = [(a.tensors[name], b.tensors[name]) for name in a.tensors] if a.tensors.keys() == b.tensors.keys() else []
    return all(equal(p, q) for p, q in pairs + sums + tensors) and equal(a.target, b.target) and (
        a.tensors.keys() == b.tensors.keys())


def held_bytes(e):
    """The bytes of the distinct arrays an explanation holds per sample (an array in two fields counts once)."""
    arrays = {id(a): a for a in explain_module._arrays([getattr(e, name) for name in explain_module.JOINED])}
    return sum(a.nbytes for a in arrays.values())


@pytest.mark.parametrize("model, dtype", [("mnist_mlp", "float32"), ("mnist_mlp", "float64"), ("mnist_cnn", "float32")])
@pytest.mark.parametrize("composite", ["epsilon_gamma_box", "epsilon_alpha2_beta1_flat", "lrp0"])
def test_chunks_give_the_one_pass_result_bit_for_bit(digits, model, dtype, composite):
    net = load(data.model_path(model), dtype=dtype)
    one = explain(net, digits, composite=composite, target=np.arange(12) % 10, batch_size=len(digits))
    for batch_size in (1, 5):
        assert identical(explain(net, digits, composite=composite, target=np.arange(12) % 10, batch_size=batch_size),
                         one)


def test_a_chunked_explanation_holds_what_one_pass_holds(digits):
    """The parts are joined into arrays shared as in one pass (a layer's input relevance is also a tensor's
    relevance), not into a copy per field: the result holds as many bytes as the one-pass result."""
    net = load(data.model_path("mnist_cnn"))
    one, chunked = explain(net, digits, batch_size=len(digits)), explain(net, digits, batch_size=5)
    assert identical(chunked, one) and held_bytes(chunked) == held_bytes(one)
    assert all(chunked.layers[i] is chunked.tensors[node.inputs[0]] for i, node in enumerate(net.nodes)
               if len(node.inputs) == 1 and node.inputs[0] in chunked.tensors)


def test_the_default_chunks_follow_the_buffer_limit(digits, monkeypatch):
    """A buffer limit of 1 byte leaves one sample per chunk (the convolutions then also work row by row, in
    both runs); the result is the one-pass result."""
    net = load(data.model_path("mnist_cnn"))
    passes = []
    batch = explain_module._explain_batch
    monkeypatch.setattr(explain_module, "_explain_batch", lambda *args: passes.append(len(args[2])) or batch(*args))
    previous = windows.set_buffer_limit(1)
    try:
        one = explain(net, digits, batch_size=len(digits))
        chunked = explain(net, digits)
    finally:
        windows.set_buffer_limit(previous)
    assert passes == [12] + [1] * 12 and identical(chunked, one)


def test_per_sample_init_arrays_are_cut_with_the_batch(digits):
    """Contrastive methods pass one init row per sample: each chunk gets its own rows."""
    net = load(data.model_path("mnist_mlp"), dtype="float64")
    init = np.random.default_rng(0).normal(size=(12, 10))
    assert identical(explain(net, digits, init=init, batch_size=5), explain(net, digits, init=init, batch_size=12))
    one_row = init[0]
    assert identical(explain(net, digits, init=one_row, batch_size=5), explain(net, digits, init=one_row, batch_size=12))
    assert equal(clrp(net, digits, 3).relevance, clrp(net, digits, 3).relevance)


def test_a_batch_relative_stabilizer_is_explained_in_one_pass(digits):
    """The tutorial convention scales epsilon by the RMS over the whole batch: chunks would change it, so the
    batch size is not applied (the result equals the one-pass result, not the per-chunk one)."""
    net = load(data.model_path("mnist_mlp"), dtype="float64")
    one = explain(net, digits, composite="tutorial_mnist")
    assert identical(explain(net, digits, composite="tutorial_mnist", batch_size=1), one)
    per_sample = explain(net, digits[:1], composite="tutorial_mnist")
    assert not equal(per_sample.relevance[0], one.relevance[0])   # the coupling is real


def test_keep_input_holds_only_the_input_relevance(digits):
    net = load(data.model_path("mnist_cnn"))
    full = explain(net, digits, batch_size=5)
    light = explain(net, digits, batch_size=5, keep="input")
    assert light.layers is None and list(light.tensors) == ["input"]
    assert equal(light.relevance, full.relevance)
    assert equal(light.conservation().out, full.conservation().out)   # the report's sums are kept
    with pytest.raises(ValueError, match=r"keep must be one of \('all', 'input'\), got 'layers'"):
        explain(net, digits, keep="layers")
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        explain(net, digits, batch_size=0)


def test_the_buffer_limit_takes_integers_of_every_kind():
    """NumPy integers and integer floats are byte counts (np.int64 was refused as "not a positive number")."""
    previous = lrpref.set_buffer_limit(np.int64(1 << 20))
    try:
        assert windows.BUFFER_LIMIT == 1 << 20 and type(windows.BUFFER_LIMIT) is int
        lrpref.set_buffer_limit(2.0 ** 21)
        assert windows.BUFFER_LIMIT == 1 << 21
        for value, message in (("1GB", r"must be an integer, got '1GB' \(str\)"),
                               (0, "must be an integer >= 1, got 0")):
            with pytest.raises((TypeError, ValueError), match=f"the buffer limit \\(bytes\\) {message}"):
                lrpref.set_buffer_limit(value)
    finally:
        lrpref.set_buffer_limit(previous)


@pytest.mark.parametrize("given, message", [
    ({"target": list(range(13))}, r"target must be a class index or one per sample \(12 integers\), got \[0, 1"),
    ({"init": np.ones((5, 10))}, r"init array must have the output's shape \(12, 10\) or \(10,\), got \(5, 10\)"),
    ({"init": np.ones((13, 10))}, r"got \(13, 10\)"),
])
def test_per_sample_arguments_must_fit_the_whole_batch_when_chunked(digits, given, message):
    """Cut into chunks of 5, 13 targets or 13 init rows fitted (the extra one ignored) and 5 init rows were
    reported as (0, 10) by the third chunk."""
    net = load(data.model_path("mnist_mlp"))
    with pytest.raises(ValueError, match=message):
        explain(net, digits, composite="epsilon", batch_size=5, **given)
