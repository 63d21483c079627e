"""Export a torchvision VGG or ResNet to lrpref's HDF5 schema.

    python weights/export_torchvision.py ARCH OUT.h5 [--state-dict FILE] [--seed N] [--dtype float32]

ARCH is one of vgg16, vgg16_bn, vgg19, vgg19_bn, resnet18, resnet34, resnet50, resnet101, resnet152.

With ``--state-dict`` it exports the weights of a torchvision state dict saved with ``torch.save``: for
pretrained weights, ``torch.save(torchvision.models.vgg16(weights="IMAGENET1K_V1").state_dict(), "vgg16.pth")``
wherever torchvision is installed, then export ``vgg16.pth`` here. Without it, it exports the architecture's
default random initialisation (torchvision's scheme, seeded by ``--seed``), for testing.

This script needs PyTorch (to read the state dict and to initialise), not torchvision: the architectures
below are written in plain PyTorch with torchvision's module names, so that their state dicts match
torchvision's key for key. lrpref itself never imports torch. The output records the torchvision
preprocessing (RGB in [0, 1], ImageNet mean and std), whose per-channel pixel range is the zB bound.
"""
import argparse
import pickle

import torch
from torch import nn

import lrpref
from lrpref.cli import check_output
from lrpref.files import refuse_overwriting
from lrpref.models import torchvision as layout
from lrpref.preprocessing import PREPROCESSING


def torch_model(arch):
    """The architecture in plain PyTorch, module for module as torchvision builds it, initialised as torchvision."""
    if arch.startswith("vgg"):
        layers, c_in = [], 3
        for v in layout.VGG_CONFIGS[arch.replace("_bn", "")]:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            layers.append(nn.Conv2d(c_in, v, kernel_size=3, padding=1))
            layers += [nn.BatchNorm2d(v), nn.ReLU(inplace=True)] if arch.endswith("_bn") else [nn.ReLU(inplace=True)]
            c_in = v
        model = VGG(nn.Sequential(*layers))
    else:
        block, counts = layout.RESNET_CONFIGS[arch]
        model = ResNet(Bottleneck if block == "bottleneck" else BasicBlock, counts)
    for m in model.modules():   # torchvision's initialisation
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.Linear) and arch.startswith("vgg"):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.constant_(m.bias, 0)
    return model.eval()


class VGG(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(), nn.Linear(4096, 1000))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in, width, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = downsample

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in, width, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    def __init__(self, block, counts):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c_in = 64
        for stage, (count, width) in enumerate(zip(counts, (64, 128, 256, 512)), 1):
            blocks = []
            for index in range(count):
                stride = 2 if stage > 1 and index == 0 else 1
                downsample = None
                if stride != 1 or c_in != width * block.expansion:
                    downsample = nn.Sequential(nn.Conv2d(c_in, width * block.expansion, 1, stride, bias=False),
                                               nn.BatchNorm2d(width * block.expansion))
                blocks.append(block(c_in, width, stride, downsample))
                c_in = width * block.expansion
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, 1000)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def export(arch, state, dtype="float32"):
    """The lrpref network for ``arch`` with the arrays of ``state`` (names to NumPy arrays)."""
    net = layout.from_state_dict(arch, state, dtype)
    spec = PREPROCESSING["torchvision"]
    net.meta.update(preprocessing="torchvision", input_low=spec.low, input_high=spec.high,
                    composite="epsilon_gamma_box",   # what `lrpref explain` uses unless told otherwise
                    description=f"torchvision {arch}, exported by weights/export_torchvision.py")
    return net


def read_state(args):
    """The state dict of ``--state-dict`` (else the seeded random initialisation), names to NumPy arrays."""
    if args.state_dict:
        try:
            state = torch.load(args.state_dict, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as err:   # torch's words span many lines
            raise ValueError(f"{args.state_dict} is not a state dict saved with torch.save "
                             f"(torch.load: {str(err).strip().split('. ')[0]})") from None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError(f"{args.state_dict} does not hold a state dict (names to tensors): "
                             f"found {type(state).__name__}")
    else:
        torch.manual_seed(args.seed)
        state = torch_model(args.arch).state_dict()
    return {k: v.detach().cpu().numpy() for k, v in state.items() if not k.endswith("num_batches_tracked")}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="export_torchvision.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("arch", choices=layout.ARCHITECTURES)
    parser.add_argument("out", help="the lrpref HDF5 file to write")
    parser.add_argument("--state-dict", help="a torchvision state dict saved with torch.save")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random initialisation (default: 0)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    args = parser.parse_args(argv)
    try:
        refuse_overwriting(args.out, [args.state_dict])
        check_output(args.out)   # before the state dict is read
        state = read_state(args)
        lrpref.save(export(args.arch, state, args.dtype), args.out)
    except (ValueError, OSError, RuntimeError, pickle.UnpicklingError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    print(f"wrote {args.out} ({args.arch}, {sum(v.size for v in state.values()):,} parameters, {args.dtype})")


if __name__ == "__main__":
    main()
