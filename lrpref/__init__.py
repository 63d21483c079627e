"""lrpref: a reference implementation of Layer-wise Relevance Propagation.

The engine follows the Montavon LRP tutorial: per layer, four visible array steps (z, s, c, R), on NumPy or
CuPy. Conventions (stabilizer, bias handling, pooling, output seed) are named parameters.
"""
from . import composites, conventions, data, evaluation, layers, models, network, preprocessing, rules
from .composites import Composite
from .explain import Explanation, explain
from .io import load, save
from .network import Network, Node, Sequential, fold_batchnorm
from .stabilizer import Stabilizer
from .windows import set_buffer_limit

__version__ = "0.1.0"

__all__ = [
    "Composite", "Explanation", "Network", "Node", "Sequential", "Stabilizer", "composites", "conventions", "data",
    "evaluation", "explain", "fold_batchnorm", "layers", "load", "models", "network", "preprocessing", "rules", "save",
    "set_buffer_limit",
]
