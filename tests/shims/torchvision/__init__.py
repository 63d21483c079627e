"""A stand-in for torchvision, for tests only: Zennit imports ``torchvision.models.resnet`` for the block classes
its ResNet canonizer recognises. The registry's torchvision cannot run next to the CPU build of PyTorch, so the
tests point Zennit at the export script's plain-PyTorch blocks, which carry torchvision's module names."""
