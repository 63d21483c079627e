"""The ResNet blocks Zennit's canonizer looks for: the export script's plain-PyTorch ones (see the shim's __init__)."""
from export_torchvision import BasicBlock, Bottleneck  # noqa: F401
