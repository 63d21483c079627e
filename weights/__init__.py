"""Files shipped with lrpref: the trained MNIST models and held-out digits (see README.md in this folder)."""
