"""VGG and ResNet: torchvision's layout, and the Keras layout of ``keras.applications``.

Each builder takes ``weights``:

- ``None``: random weights, initialised as torchvision does (torchvision layout);
- an lrpref file written by ``weights/export_torchvision.py`` (torchvision layout);
- a Keras full-model file, or a Keras weights-only file (the published keras-applications layout) for
  VGG16/19 and ResNet50/101/152 (Keras layout: stride on the first 1x1 convolution of a block, biased
  convolutions, BatchNorm epsilon 1.001e-5, no dropout).

``layout`` says which layout is wanted and must agree with the file; by default it follows the file.
"""
from .. import io, keras
from . import torchvision

LAYOUTS = ("torchvision", "keras")


def build(arch, weights=None, layout=None, dtype="float32", backend=None, seed=0):
    """The architecture ``arch`` with ``weights``; see the module docstring and :func:`vgg16`."""
    if layout not in (None,) + LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if io.dtype_name(dtype) not in io.DTYPES:   # int32 was built as float64
        raise ValueError(f"dtype must be one of {io.DTYPES}, got {dtype!r}")
    if weights is None:
        if layout == "keras":
            raise ValueError("the Keras layout needs a Keras weights file: pass weights=...")
        net = torchvision.build(arch, torchvision.random_init(seed, dtype))
        io.set_preprocessing(net, "torchvision")
        return net.to(backend) if backend is not None else net
    with io.open_hdf5(weights) as f:
        kind = io.file_kind(f)
        wanted = {"lrpref": "torchvision", "keras-model": "keras", "keras-weights": "keras"}.get(kind)
        if wanted is None:
            raise ValueError(f"{weights} is neither an lrpref network nor a Keras model or weights file")
        if layout not in (None, wanted):
            raise ValueError(f"{weights} holds the {wanted} layout, but layout={layout!r} was asked for")
        if kind == "keras-weights":
            try:
                net = keras.from_config(keras.application_config(arch), keras.read_weights(f), dtype)
            except (ValueError, TypeError) as err:
                raise ValueError(f"{weights}: {err}") from None
    if kind != "keras-weights":
        net = io.load(weights, dtype)
        recorded = net.meta.get("architecture", net.meta.get("keras_name"))
        if recorded != arch:
            raise ValueError(f"{weights} holds {recorded!r}, not {arch!r}" if recorded is not None else
                             f"{weights} records no architecture (meta 'architecture'), so it is not {arch!r}; "
                             "load it with lrpref.load")
    return net.to(backend) if backend is not None else net


def _builder(arch, layouts):
    def builder(weights=None, layout=None, dtype="float32", backend=None, seed=0):
        return build(arch, weights, layout, dtype, backend, seed)
    builder.__name__ = arch
    builder.__doc__ = f"""{arch} ({' or '.join(layouts)} layout).

    Parameters
    ----------
    weights : path or None
        See :mod:`lrpref.models`; ``None`` gives random weights in torchvision's layout.
    layout : {{"torchvision", "keras"}} or None
        Follows the weights file by default.
    dtype : {{"float32", "float64"}}
    backend : {{"numpy", "cupy"}} or None
    seed : int
        Seed of the random weights.
    """
    return builder


vgg16 = _builder("vgg16", LAYOUTS)
vgg16_bn = _builder("vgg16_bn", LAYOUTS[:1])
vgg19 = _builder("vgg19", LAYOUTS)
vgg19_bn = _builder("vgg19_bn", LAYOUTS[:1])
resnet18 = _builder("resnet18", LAYOUTS[:1])
resnet34 = _builder("resnet34", LAYOUTS[:1])
resnet50 = _builder("resnet50", LAYOUTS)
resnet101 = _builder("resnet101", LAYOUTS)
resnet152 = _builder("resnet152", LAYOUTS)
