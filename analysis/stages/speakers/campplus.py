"""CAM++ speaker embeddings (3D-Speaker), the network definition for the published state dict.

The checkpoint (:data:`analysis.core.models.CAMPPLUS`, ``campplus_cn_en_common.pt``, the
``iic/speech_campplus_sv_zh_en_16k-common_advanced`` model) is a plain PyTorch state dict, not
TorchScript, so the network has to be defined here. The definition follows 3D-Speaker's
``speakerlab/models/campplus/DTDNN.py`` and ``layers.py``:

    Copyright 3D-Speaker (https://github.com/alibaba-damo-academy/3D-Speaker). All Rights Reserved.
    Licensed under the Apache License, Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0)

reduced to what inference needs (the ``batchnorm-relu`` configuration of the published model,
no gradient checkpointing); module names are kept so that the state dict loads strictly.
Changes from the original: the layers are written out instead of built from a configuration
string, and :meth:`CAMPPlus.forward` optionally pools statistics over weighted frames.

Input features are those of 3D-Speaker's ``FBank`` class: 80 Kaldi log-mel filterbanks (25 ms
windows every 10 ms, no dither) of 16 kHz audio, mean-normalised over the utterance.
Output: a 192-dimensional embedding; compare two with the cosine.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

SAMPLE_RATE = 16000
NUM_MEL_BINS = 80
EMBEDDING_DIM = 192


def _bn_relu(channels: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict([("batchnorm", nn.BatchNorm1d(channels)), ("relu", nn.ReLU(inplace=True))]))


class BasicResBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != self.expansion * planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=(stride, 1), bias=False),
                nn.BatchNorm2d(self.expansion * planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class FCM(nn.Module):
    """Front-end convolution module: 2-D residual blocks over (frequency, time)."""

    def __init__(self, m_channels: int = 32, feat_dim: int = NUM_MEL_BINS):
        super().__init__()
        self.conv1 = nn.Conv2d(1, m_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(m_channels)
        self.layer1 = nn.Sequential(BasicResBlock(m_channels, m_channels, 2), BasicResBlock(m_channels, m_channels, 1))
        self.layer2 = nn.Sequential(BasicResBlock(m_channels, m_channels, 2), BasicResBlock(m_channels, m_channels, 1))
        self.conv2 = nn.Conv2d(m_channels, m_channels, kernel_size=3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(m_channels)
        self.out_channels = m_channels * (feat_dim // 8)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x.unsqueeze(1))))
        out = self.layer2(self.layer1(out))
        out = F.relu(self.bn2(self.conv2(out)))
        b, c, f, t = out.shape
        return out.reshape(b, c * f, t)


class TDNNLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        padding = (kernel_size - 1) // 2 * dilation
        self.linear = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                dilation=dilation, bias=False)
        self.nonlinear = _bn_relu(out_channels)

    def forward(self, x):
        return self.nonlinear(self.linear(x))


class CAMLayer(nn.Module):
    """Context-aware masking: a local convolution gated by utterance- and segment-level context."""

    def __init__(self, bn_channels: int, out_channels: int, kernel_size: int, padding: int, dilation: int,
                 reduction: int = 2):
        super().__init__()
        self.linear_local = nn.Conv1d(bn_channels, out_channels, kernel_size, padding=padding, dilation=dilation,
                                      bias=False)
        self.linear1 = nn.Conv1d(bn_channels, bn_channels // reduction, 1)
        self.relu = nn.ReLU(inplace=True)
        self.linear2 = nn.Conv1d(bn_channels // reduction, out_channels, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        y = self.linear_local(x)
        context = x.mean(-1, keepdim=True) + self._segment_pooling(x)
        return y * self.sigmoid(self.linear2(self.relu(self.linear1(context))))

    @staticmethod
    def _segment_pooling(x, seg_len: int = 100):
        seg = F.avg_pool1d(x, kernel_size=seg_len, stride=seg_len, ceil_mode=True)
        shape = seg.shape
        seg = seg.unsqueeze(-1).expand(*shape, seg_len).reshape(*shape[:-1], -1)
        return seg[..., : x.shape[-1]]


class CAMDenseTDNNLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, bn_channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.nonlinear1 = _bn_relu(in_channels)
        self.linear1 = nn.Conv1d(in_channels, bn_channels, 1, bias=False)
        self.nonlinear2 = _bn_relu(bn_channels)
        self.cam_layer = CAMLayer(bn_channels, out_channels, kernel_size, (kernel_size - 1) // 2 * dilation, dilation)

    def forward(self, x):
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))))


class CAMDenseTDNNBlock(nn.ModuleList):
    def __init__(self, num_layers: int, in_channels: int, out_channels: int, bn_channels: int, kernel_size: int,
                 dilation: int):
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"tdnnd{i + 1}", CAMDenseTDNNLayer(in_channels + i * out_channels, out_channels,
                                                               bn_channels, kernel_size, dilation))

    def forward(self, x):
        for layer in self:
            x = torch.cat([x, layer(x)], dim=1)
        return x


class TransitLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.nonlinear = _bn_relu(in_channels)
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)

    def forward(self, x):
        return self.linear(self.nonlinear(x))


class StatsPool(nn.Module):
    """Mean and standard deviation over time, optionally weighted (weights (batch, time))."""

    def forward(self, x, weights=None):
        if weights is None:
            return torch.cat([x.mean(-1), x.std(-1, unbiased=True)], dim=-1)
        w = weights[:, None, :]
        total = w.sum(-1).clamp_min(1e-8)
        mean = (x * w).sum(-1) / total
        var = (w * (x - mean[..., None]) ** 2).sum(-1) / total
        return torch.cat([mean, var.clamp_min(1e-8).sqrt()], dim=-1)


class DenseLayer(nn.Module):
    """Embedding layer: 1x1 convolution then batch norm without affine parameters (3D-Speaker's
    ``config_str='batchnorm_'``: no ReLU)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)
        self.nonlinear = nn.Sequential(OrderedDict([("batchnorm", nn.BatchNorm1d(out_channels, affine=False))]))

    def forward(self, x):
        return self.nonlinear(self.linear(x.unsqueeze(-1)).squeeze(-1))


class CAMPPlus(nn.Module):
    def __init__(self, feat_dim: int = NUM_MEL_BINS, embedding_size: int = EMBEDDING_DIM, growth_rate: int = 32,
                 bn_size: int = 4, init_channels: int = 128):
        super().__init__()
        self.head = FCM(feat_dim=feat_dim)
        channels = self.head.out_channels
        self.xvector = nn.Sequential(OrderedDict([("tdnn", TDNNLayer(channels, init_channels, 5, stride=2))]))
        channels = init_channels
        for i, (num_layers, kernel_size, dilation) in enumerate(zip((12, 24, 16), (3, 3, 3), (1, 2, 2))):
            self.xvector.add_module(f"block{i + 1}", CAMDenseTDNNBlock(num_layers, channels, growth_rate,
                                                                        bn_size * growth_rate, kernel_size, dilation))
            channels += num_layers * growth_rate
            self.xvector.add_module(f"transit{i + 1}", TransitLayer(channels, channels // 2))
            channels //= 2
        self.xvector.add_module("out_nonlinear", _bn_relu(channels))
        self.xvector.add_module("stats", StatsPool())
        self.xvector.add_module("dense", DenseLayer(channels * 2, embedding_size))

    def forward(self, features, weights=None):
        """Embeddings (batch, 192) of ``features`` (batch, frames, 80); ``weights`` (batch,
        frames) in [0, 1] pool the statistics over the weighted frames only (None: all)."""
        x = self.head(features.permute(0, 2, 1))
        for name, module in self.xvector.named_children():
            if name == "stats":
                if weights is not None:  # the TDNN layer halves the frame rate
                    weights = F.interpolate(weights[:, None, :], size=x.shape[-1], mode="nearest")[:, 0]
                x = module(x, weights)
            else:
                x = module(x)
        return x


def fbank(waveform: torch.Tensor) -> torch.Tensor:
    """3D-Speaker's input features of one mono 16 kHz ``waveform`` (samples,): 80 Kaldi log-mel
    filterbanks every 10 ms, shape (frames, 80), not yet mean-normalised."""
    import torchaudio.compliance.kaldi as kaldi

    return kaldi.fbank(waveform.reshape(1, -1) * (1 << 15), num_mel_bins=NUM_MEL_BINS,
                       sample_frequency=SAMPLE_RATE, dither=0.0)


def load(path) -> CAMPPlus:
    """The network with the state dict at ``path``, in eval mode."""
    model = CAMPPlus()
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()
