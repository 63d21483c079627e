"""Layer cases shared by the tests: an lrpref layer next to its naive matrix (from tests/naive.py)."""
from dataclasses import dataclass

import numpy as np

import naive
from lrpref import backend, layers

# Convolution geometries: kernel, stride, padding (top, bottom, left, right), input height x width.
CONV_GEOMETRIES = [
    ((3, 3), (1, 1), (0, 0, 0, 0), (6, 7)),
    ((3, 3), (2, 2), (1, 1, 1, 1), (7, 6)),
    ((2, 2), (1, 1), (0, 1, 0, 1), (5, 5)),   # asymmetric, as Keras "same" with an even kernel
    ((3, 2), (2, 1), (1, 1, 0, 0), (6, 5)),
    ((1, 1), (2, 2), (0, 0, 0, 0), (5, 6)),   # a ResNet downsample
    ((3, 3), (3, 3), (0, 0, 0, 0), (7, 8)),   # windows that leave the last rows and columns out
]

# Pool geometries: kernel, stride, padding, input height x width.
POOL_GEOMETRIES = [
    ((2, 2), (2, 2), (0, 0, 0, 0), (6, 6)),
    ((3, 3), (2, 2), (1, 1, 1, 1), (7, 7)),   # the ResNet stem max pool
    ((2, 3), (1, 2), (0, 0, 1, 1), (5, 6)),
]

ADAPTIVE_SIZES = [((7, 7), (3, 3)), ((6, 5), (1, 1)), ((5, 4), (7, 3))]


@dataclass
class Case:
    """A linear layer, its matrix ``M`` (J, I), bias ``b`` (J,) or None, and shapes of one sample."""

    id: str
    layer: object
    M: np.ndarray
    b: np.ndarray
    in_shape: tuple
    out_shape: tuple
    connected: np.ndarray = None


def dense_case(rng, n_in=7, n_out=5):
    w, b = rng.normal(size=(n_out, n_in)), rng.normal(size=n_out)
    return Case(f"dense{n_in}-{n_out}", layers.Dense(w, b), w, b, (n_in,), (n_out,), np.ones_like(w, dtype=bool))


def conv_case(rng, geometry, c_in=2, c_out=3):
    kernel, stride, padding, hw = geometry
    w, b = rng.normal(size=(c_out, c_in) + kernel), rng.normal(size=c_out)
    M, connected, out_shape = naive.conv_matrix(w, stride, padding, (c_in,) + hw)
    layer = layers.Conv2d(w, b, stride=stride, padding=padding)
    name = f"conv{kernel[0]}x{kernel[1]}-s{stride[0]}{stride[1]}-p{''.join(map(str, padding))}"
    return Case(name, layer, M, naive.conv_bias(b, out_shape), (c_in,) + hw, out_shape, connected)


def dense_map_case(rng, n_in=3, n_out=4, hw=(3, 4)):
    """Dense on a feature map (Keras' Dense on a 4-D tensor): a 1x1 convolution."""
    w, b = rng.normal(size=(n_out, n_in)), rng.normal(size=n_out)
    M, connected, out_shape = naive.conv_matrix(w[:, :, None, None], (1, 1), (0, 0, 0, 0), (n_in,) + hw)
    return Case("dense-on-map", layers.Dense(w, b), M, naive.conv_bias(b, out_shape), (n_in,) + hw, out_shape, connected)


def weighted_cases(rng):
    return [dense_case(rng), dense_map_case(rng)] + [conv_case(rng, g) for g in CONV_GEOMETRIES]


def pool_cases(channels=2):
    cases = []
    for kernel, stride, padding, hw in POOL_GEOMETRIES:
        for include in (True, False):
            M, out_shape = naive.avgpool_matrix((channels,) + hw, kernel, stride, padding, include)
            layer = layers.AvgPool2d(kernel, stride, padding, count_include_pad=include)
            cases.append(Case(f"avg{kernel}-{stride}-{padding}-{include}", layer, M, None, (channels,) + hw, out_shape))
    for hw, size in ADAPTIVE_SIZES:
        M, out_shape = naive.adaptive_matrix((channels,) + hw, size)
        cases.append(Case(f"adaptive{hw}->{size}", layers.AdaptiveAvgPool2d(size), M, None, (channels,) + hw, out_shape))
    return cases


def batch(rng, shape, n=3, positive=False):
    """A batch of inputs: uniform in [-1, 1], or after a ReLU (about half zeros)."""
    x = rng.uniform(-1, 1, size=(n,) + tuple(shape))
    return np.maximum(x, 0) if positive else x


def on(xp, layer):
    """The layer with its arrays on the array module ``xp``."""
    return layer.map_arrays(lambda a: backend.asarray(a, xp))


def relative_error(actual, expected):
    """``max |actual - expected| / max |expected|``, on the host."""
    actual, expected = backend.to_host(actual), backend.to_host(expected)
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-300))
