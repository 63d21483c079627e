"""Conventions: what the numbers given to a composite mean, named after the implementation they reproduce.

=================  ==========================================  ===============================================
                   ``zennit`` (default; Zennit 1.0)            ``tutorial`` (the Montavon LRP tutorial)
=================  ==========================================  ===============================================
stabilizer         ``z + 1e-6 sign(z)``, ``sign(0) = +1``      ``z + 1e-9``, whatever the sign of z
epsilon            ``z + epsilon sign(z)``, default 1e-6       ``z + epsilon * rms(z) + 1e-9``, the RMS over
                                                               the whole batch tensor; default 0.25
gamma              generalized: two output branches, inputs    original: ``rho(w) = w + gamma w+`` on weights
                   split by sign (:class:`~lrpref.rules.Gamma`)  and bias, one formula for every output
bias               in every denominator (b+ in z-plus, b+/b-   in every denominator, through rho
                   in alpha-beta and gamma, cancelled in zB)
statistics         per sample (nothing shared across a batch)  RMS over the whole batch
=================  ==========================================  ===============================================

Sources: `peer_libraries.md` §1.2-1.6 and (b) for Zennit, `montavon_and_toolbox.md` §1.2-1.4 for the tutorial.

``toolbox`` (the LRP Toolbox 1.3.1, :mod:`lrpref.toolbox`): Zennit's sign-aware ``z + e sign(z)`` with the
stabilizer 1e-16 and epsilon 0.01 (its demo's); alpha-beta with ``z+ + 1e-16`` and ``z- - 2e-16``; w-square
without the bias; per sample; no gamma rule (gamma falls back to Zennit's). Its pools follow the rule of the
weighted layers (:meth:`Convention.pools`) in the composites ``lrp0``, ``epsilon``, ``alpha_beta``, ``zplus``,
``flat`` and ``wsquare``.
"""
from dataclasses import dataclass

from . import toolbox
from .layers import MaxPool2d, SumPool2d
from .rules import LRP0, AlphaBeta, Epsilon, Flat, Gamma, OriginalGamma, WSquare
from .stabilizer import Stabilizer


@dataclass(frozen=True)
class Convention:
    """How numeric rule parameters become rules.

    Attributes
    ----------
    name : str
    stabilizer_default : float
        The stabilizer of every rule but epsilon, when none is given.
    epsilon_default : float
    sign_aware : bool
        Stabilizers add ``sign(z) * e`` (else ``+e``).
    epsilon_relative : {None, "batch", "sample"}
        Epsilon is absolute or relative to the RMS of z.
    epsilon_offset : float
        Constant added to the epsilon rule's denominator besides epsilon.
    generalized_gamma : bool
        Gamma is Zennit's generalized rule (else the tutorial's original one).
    zeros_only : bool
        Stabilizers change only exact zeros (iNNvestigate's ``SafeDivide``).
    full_bias : bool
        Alpha-beta puts the whole bias into both denominators (iNNvestigate).
    gamma_bias : bool
        The original gamma rule transforms the bias too (the tutorial; not Captum).
    """

    name: str
    stabilizer_default: float
    epsilon_default: float
    sign_aware: bool
    epsilon_relative: str
    epsilon_offset: float
    generalized_gamma: bool
    zeros_only: bool = False
    full_bias: bool = False
    gamma_bias: bool = True

    def stabilizer(self, value=None):
        """The stabilizer for ``value`` (``None``: the default); a :class:`Stabilizer` is kept as given."""
        if isinstance(value, Stabilizer):
            return value
        value = self.stabilizer_default if value is None else value
        return Stabilizer(value, sign_aware=self.sign_aware, zeros_only=self.zeros_only)

    def epsilon(self, value=None):
        """The epsilon rule's increment for ``value`` (``None``: the default)."""
        if isinstance(value, Stabilizer):
            return value
        value = self.epsilon_default if value is None else value
        return Stabilizer(value, self.sign_aware, self.epsilon_relative, self.epsilon_offset)

    def gamma(self, gamma, stabilizer=None, zero_bias=False):
        """The gamma rule of this convention."""
        if self.generalized_gamma:
            return Gamma(gamma=gamma, stabilizer=self.stabilizer(stabilizer), zero_bias=zero_bias)
        return OriginalGamma(gamma, self.stabilizer(stabilizer), zero_bias, self.gamma_bias)

    def alpha_beta(self, alpha, beta, stabilizer=None, zero_bias=False):
        """The alpha-beta rule of this convention (the bias split by sign, or whole)."""
        return AlphaBeta(alpha, beta, self.stabilizer(stabilizer), zero_bias, self.full_bias)

    def wsquare(self, stabilizer=None, zero_bias=False):
        """The w-square rule of this convention."""
        return WSquare(self.stabilizer(stabilizer), zero_bias)

    def pools(self, rule):
        """Rules of pools that go with ``rule`` on the weighted layers, ``{layer class: rule}``; empty: the
        composite's own pool rules."""
        return {}


class ToolboxConvention(Convention):
    """The LRP Toolbox 1.3.1: its alpha-beta denominators, w-square without bias, pool rules that follow the
    variant (see :mod:`lrpref.toolbox`)."""

    def alpha_beta(self, alpha, beta, stabilizer=None, zero_bias=False):
        stab = toolbox.AlphaBetaStabilizer() if stabilizer is None else self.stabilizer(stabilizer)
        return AlphaBeta(alpha, beta, stab, zero_bias)

    def wsquare(self, stabilizer=None, zero_bias=True):
        """The Toolbox's ``ww``: ``w^2 / sum w^2``, never the bias (``zero_bias`` is ignored)."""
        return WSquare(self.stabilizer(stabilizer), zero_bias=True)

    def pools(self, rule):
        """The sum pool's rule for ``simple``, ``epsilon`` and ``alphabeta`` (max pooling: winner-take-all, ties
        split, as every composite's default); both pools spread evenly for ``flat`` and ``ww``."""
        if isinstance(rule, (Flat, WSquare)):
            return {MaxPool2d: toolbox.PoolFlat(), SumPool2d: toolbox.PoolFlat()}
        if isinstance(rule, AlphaBeta):
            return {SumPool2d: toolbox.SumPoolAlphaBeta(rule.alpha, rule.beta)}
        if isinstance(rule, Epsilon):
            return {SumPool2d: toolbox.SumPoolEpsilon(rule.epsilon)}
        if isinstance(rule, LRP0):
            return {SumPool2d: toolbox.SumPoolEpsilon(toolbox.SUMPOOL_STABILIZER)}
        return {}


ZENNIT = Convention("zennit", 1e-6, 1e-6, True, None, 0.0, True)
TUTORIAL = Convention("tutorial", 1e-9, 0.25, False, "batch", 1e-9, False)
INNVESTIGATE = Convention("innvestigate", 1e-7, 1e-7, True, None, 0.0, True, zeros_only=True, full_bias=True)
CAPTUM = Convention("captum", 1e-9, 1e-9, True, None, 0.0, False, gamma_bias=False)
TOOLBOX = ToolboxConvention("toolbox", 1e-16, 0.01, True, None, 0.0, True)
CONVENTIONS = {c.name: c for c in (ZENNIT, TUTORIAL, INNVESTIGATE, CAPTUM, TOOLBOX)}


def get(convention):
    """A :class:`Convention` by name (or as given)."""
    if isinstance(convention, Convention):
        return convention
    try:
        return CONVENTIONS[convention]
    except (KeyError, TypeError):
        raise ValueError(f"unknown convention {convention!r}: expected one of {sorted(CONVENTIONS)}") from None
