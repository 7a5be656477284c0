"""The initial weights the upstream PyTorch trainers give a network.

Every upstream trainer here builds its network with torch's layer defaults and sets no
initialisation of its own when training from scratch:

- ``nn.Conv2d`` / ``nn.Linear`` weights: kaiming-uniform with a = sqrt(5), which is
  U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels / groups * kh * kw (in_features);
- their biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in));
- BatchNorm: weight 1, bias 0, running mean 0, running variance 1.

Paddle's defaults differ (Xavier-like conv weights whose fan_in ignores the groups, zero
biases): measured on ULFD RFB, regular conv weights had 2.5x torch's std and depthwise ones
0.4-0.6x. ULFD's ``init_from_base_net`` / ``init_from_pretrained_ssd`` re-initialise the
layers they do not load with ``xavier_uniform_`` on conv weights only (biases keep torch's
default): :func:`xavier_uniform_conv_weights`.

Pytorch_Retinaface's ResNet-50 model is the exception: its backbone is
``torchvision.models.resnet50``, which initialises itself (conv weights kaiming-normal with
mode ``fan_out`` for ReLU, BatchNorm weight 1 and bias 0), while the FPN, SSH and heads keep
torch's defaults: :func:`torchvision_resnet_init`.

None of this is used by the weight import: imported weights overwrite every tensor.
"""
from __future__ import annotations

import math
from typing import Iterable

import paddle
import paddle.nn as nn


def _fan_in_out(weight: paddle.Tensor, layer: nn.Layer):
    """torch's _calculate_fan_in_and_fan_out on the Paddle weight of ``layer``."""
    shape = list(weight.shape)
    if isinstance(layer, nn.Linear):  # Paddle stores (in, out), torch (out, in)
        return shape[0], shape[1]
    receptive = int(math.prod(shape[2:]))
    return shape[1] * receptive, shape[0] * receptive


def _uniform_(param: paddle.Tensor, bound: float) -> None:
    param.set_value(paddle.uniform(param.shape, dtype=param.dtype, min=-bound, max=bound))


def _layers_with_weights(net: nn.Layer) -> Iterable[nn.Layer]:
    return (m for m in net.sublayers(include_self=True)
            if isinstance(m, (nn.Conv1D, nn.Conv2D, nn.Conv3D, nn.Linear,
                              nn.Conv2DTranspose)))


def torch_default_init(net: nn.Layer) -> nn.Layer:
    """Give every conv / linear layer torch's default initialisation and every BatchNorm
    weight 1, bias 0 (in place; draws from Paddle's global generator, see paddle.seed)."""
    for layer in _layers_with_weights(net):
        fan_in, _ = _fan_in_out(layer.weight, layer)
        if isinstance(layer, nn.Conv2DTranspose):  # torch computes it on (in, out/g, k, k)
            fan_in = layer.weight.shape[1] * int(math.prod(layer.weight.shape[2:]))
        bound = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
        _uniform_(layer.weight, bound)
        if getattr(layer, "bias", None) is not None:
            _uniform_(layer.bias, bound)
    for layer in net.sublayers(include_self=True):
        if isinstance(layer, (nn.BatchNorm1D, nn.BatchNorm2D, nn.BatchNorm3D, nn.BatchNorm)):
            if layer.weight is not None:
                layer.weight.set_value(paddle.ones_like(layer.weight))
            if layer.bias is not None:
                layer.bias.set_value(paddle.zeros_like(layer.bias))
    return net


def xavier_uniform_conv_weights(net: nn.Layer) -> nn.Layer:
    """torch.nn.init.xavier_uniform_ on every Conv2d weight of ``net`` (ULFD's
    ``_xavier_init_``): U(+-sqrt(6 / (fan_in + fan_out))), fan_out = out_channels * kh * kw."""
    for layer in net.sublayers(include_self=True):
        if isinstance(layer, nn.Conv2D):
            fan_in, fan_out = _fan_in_out(layer.weight, layer)
            _uniform_(layer.weight, math.sqrt(6.0 / (fan_in + fan_out)))
    return net


def torchvision_resnet_init(net: nn.Layer) -> nn.Layer:
    """torch's defaults everywhere, then torchvision's ResNet init on every ResNet-50 body:
    conv weights N(0, 2 / fan_out) with fan_out = out_channels * kh * kw
    (``kaiming_normal_(mode="fan_out", nonlinearity="relu")``), BatchNorm weight 1, bias 0."""
    from ..models.resnet import ResNet50Body
    torch_default_init(net)
    bodies = [m for m in net.sublayers(include_self=True) if isinstance(m, ResNet50Body)]
    for body in bodies:
        for layer in body.sublayers():
            if isinstance(layer, nn.Conv2D):
                _, fan_out = _fan_in_out(layer.weight, layer)
                layer.weight.set_value(paddle.normal(0.0, math.sqrt(2.0 / fan_out),
                                                     layer.weight.shape))
    return net


INITIALISERS = {"torch_default": torch_default_init, "torchvision_resnet": torchvision_resnet_init}
