"""Parameter and multiply-accumulate counts of a network (the registry's params/FLOPs)."""
from __future__ import annotations

from typing import Tuple

import numpy as np


def count_params(net) -> int:
    """Trainable parameters (BatchNorm running statistics are buffers and not counted)."""
    return int(sum(int(np.prod(p.shape)) for p in net.parameters()))


def count_macs(net, input_size: Tuple[int, int]) -> int:
    """Multiply-accumulates of convolutions and linear layers for one (width, height) input.

    The usual "FLOPs" of the face-detector papers; element-wise ops are not counted.
    """
    import paddle
    import paddle.nn as nn
    total = [0]

    def conv_hook(layer, inputs, output):
        k = int(np.prod(layer.weight.shape[1:]))  # (in / groups) * kh * kw
        total[0] += int(np.prod(output.shape[1:])) * k

    def linear_hook(layer, inputs, output):
        total[0] += int(np.prod(layer.weight.shape))

    hooks = []
    for layer in net.sublayers():
        if isinstance(layer, nn.Conv2D):
            hooks.append(layer.register_forward_post_hook(conv_hook))
        elif isinstance(layer, nn.Linear):
            hooks.append(layer.register_forward_post_hook(linear_hook))
    was_training = net.training
    net.eval()
    with paddle.no_grad():
        net(paddle.zeros([1, 3, input_size[1], input_size[0]], dtype="float32"))
    for h in hooks:
        h.remove()
    if was_training:
        net.train()
    return total[0]
