"""The stabilizer conventions, pinned to the values their sources document."""
import numpy as np
import pytest

from lrpref import backend
from lrpref.conventions import TUTORIAL, ZENNIT, get
from lrpref.stabilizer import Stabilizer


def test_zennit_stabilizer_pins(xp):
    """Zennit's tests/unit/test_core.py::test_stabilize: [0, -0, 1, -1] -> [1e-6, 1e-6, 1+1e-6, -1-1e-6]
    (peer_libraries.md §1.2): sign(0) = sign(-0) = +1."""
    z = xp.asarray([0.0, -0.0, 1.0, -1.0])
    assert np.array_equal(backend.to_host(ZENNIT.stabilizer()(z)), [1e-6, 1e-6, 1 + 1e-6, -1 - 1e-6])


def test_tutorial_stabilizers(xp, rng):
    """Tutorial §1.2: incr(z) = z + e * (mean(z**2))**.5 + 1e-9 over the whole array; other layers z + 1e-9."""
    z = rng.normal(size=(12, 10))
    eps = TUTORIAL.epsilon(0.1)(xp.asarray(z))
    # the same elementwise formula and NumPy mean (its own pairwise sum, no BLAS) on both sides: equal to an ulp
    assert np.allclose(backend.to_host(eps), z + 0.1 * (z ** 2).mean() ** 0.5 + 1e-9, rtol=1e-15, atol=0)
    assert np.array_equal(backend.to_host(TUTORIAL.stabilizer()(xp.asarray(z))), z + 1e-9)


def test_per_sample_scale_is_batch_independent(xp, rng):
    z = rng.normal(size=(4, 3, 5))
    s = Stabilizer(0.3, relative="sample")
    whole = backend.to_host(s(xp.asarray(z)))
    assert np.array_equal(whole[1:2], backend.to_host(s(xp.asarray(z[1:2]))))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relative", [None, "batch", "sample"])
def test_sign_aware_equals_its_formula_bit_for_bit(xp, rng, dtype, relative):
    """``z + e*scale`` where ``z >= 0`` (both zeros included), ``z - e*scale`` elsewhere, written literally."""
    z = rng.normal(size=(3, 4, 5)).astype(dtype)
    z.flat[:4] = [0.0, -0.0, 1e-30, -1e-30]
    s = Stabilizer(0.25, relative=relative, offset=1e-3)
    increment = 0.25 * s.scale(z) + 1e-3
    expected = np.where(z >= 0, z + increment, z - increment)
    assert np.array_equal(backend.to_host(s(xp.asarray(z))), expected)


def test_float32_stays_float32(xp):
    z = xp.asarray(np.linspace(-1, 1, 7, dtype=np.float32))
    for stabilizer in (ZENNIT.stabilizer(), TUTORIAL.epsilon(), Stabilizer(0.1, relative="sample")):
        assert stabilizer(z.reshape(1, 7)).dtype == np.float32


def test_number_means_zennit_stabilizer():
    assert Stabilizer.ensure(1e-3) == Stabilizer(1e-3, sign_aware=True)
    with pytest.raises(TypeError, match="a stabilizer must be a number or a Stabilizer"):
        Stabilizer.ensure("small")


def test_unknown_convention():
    with pytest.raises(ValueError, match="unknown convention 'captain'"):
        get("captain")
