"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998) as in the paper, and a modern variant.

``lenet5`` follows the paper's section II.B, for a 32x32 input (n_H x n_W x n_C):

=====  ==============================================  ==========  ===================
layer  what                                            output      trainable params
=====  ==============================================  ==========  ===================
C1     6 filters 5x5, then squash                      28x28x6     6*(25+1) = 156
S2     2x2 sum * coefficient + bias, squash            14x14x6     6*2 = 12
C3     16 filters 5x5 on the paper's subsets of S2     10x10x16    60*25 + 16 = 1,516
S4     2x2 sum * coefficient + bias, squash            5x5x16      16*2 = 32
C5     120 filters 5x5 (full), squash                  1x1x120     120*(400+1) = 48,120
F6     84 units, squash                                84          84*(120+1) = 10,164
RBF    y_i = sum_j (x_j - w_ij)^2, w fixed +-1 codes   classes     0 (buffer, 84*classes)
=====  ==============================================  ==========  ===================

60,000 trainable parameters in all. The squashing function is the paper's scaled tanh
f(a) = A tanh(S a), A = 1.7159, S = 2/3. The paper drew each class's 84 fixed RBF weights as a
7x12 bitmap of the character; here they are fixed +-1 codes drawn once from a seeded generator
(the same for every model, for any class count). The network returns logits = -y_i / 10 (the
log-likelihood of a Gaussian of variance 5 around each prototype, up to a constant), so the class
with the nearest prototype scores highest and ``cross_entropy`` trains it.

Weights start uniform in +-2.4 / sqrt(F_i) (F_i the unit's fan-in): the paper prints +-2.4 / F_i,
which at these fan-ins (25 to 400) starts C5 and F6 very small; the square root is the scale of
LeCun et al. "Efficient BackProp" (1998). With the paper's literal init and logits -y_i / 2, the
net stalled near 94% test accuracy on scikit-learn's digits; with these two choices it reaches
~97.5% in 8 epochs of Adam (lr 1e-3, batch 32).

``lenet5_modern`` is the textbook variant: ReLU, 2x2 max pools, a full C3 (6 -> 16), FC 120 ->
84 -> num_classes with a linear output (61,706 parameters for 10 classes).

Both take ``in_channels`` (1 for digits, 3 for RGB) and need 32x32 inputs (C5 must see a 5x5
map): upsample 8x8 digits by 4, pad 28x28 MNIST by 2. Other sizes raise :class:`ShapeError`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.errors import ShapeError
from cnnkit.models.registry import register_model
from cnnkit.models.weights import load_pretrained

__all__ = [
    "C3_TABLE",
    "LeNet5",
    "LeNet5Modern",
    "PartialConv2d",
    "RBFOutput",
    "ScaledTanh",
    "Subsampling",
    "lenet5",
    "lenet5_modern",
]

#: Table I of the paper: which S2 maps (0..5) each C3 map (0..15) reads. 60 connections.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip


class ScaledTanh(nn.Module):
    """The paper's squashing function f(a) = A tanh(S a), A = 1.7159, S = 2/3 (f(+-1) = +-1)."""

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0) -> None:
        super().__init__()
        self.amplitude = amplitude
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.tanh(self.slope * x)

    def extra_repr(self) -> str:
        return f"A={self.amplitude}, S={self.slope:.4f}"


class Subsampling(nn.Module):
    """S2/S4: each 2x2 block is summed, times a trainable coefficient, plus a trainable bias,
    one pair per map: (N, n_C, n_H, n_W) -> (N, n_C, n_H/2, n_W/2); 2 n_C parameters."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.empty(channels))
        # Average of 4 inputs at init, as a fan-in-scaled init of the coefficient
        nn.init.constant_(self.weight, 0.25)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = 4.0 * F.avg_pool2d(x, kernel_size=2, stride=2)  # sum of each 2x2 block
        return s * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def macs(self, out_shape: tuple[int, ...]) -> int:
        """Multiply-adds per image: 4 adds and 1 multiply per output, counted as 1."""
        c, h, w = out_shape[-3:]
        return c * h * w


class PartialConv2d(nn.Module):
    index: torch.Tensor
    """C3: a valid k x k convolution where output map o reads only the input maps ``table[o]``.

    Only the connected filters are parameters (``weight`` (n_conn, k, k)); forward scatters them
    into a full (out, in, k, k) filter bank whose other entries are zero, so it is one conv2d.
    """

    def __init__(
        self, in_channels: int, table: tuple[tuple[int, ...], ...], kernel_size: int = 5
    ) -> None:
        super().__init__()
        if any(not 0 <= i < in_channels for row in table for i in row):
            raise ValueError(f"connection table refers to maps outside 0..{in_channels - 1}")
        self.in_channels = in_channels
        self.out_channels = len(table)
        self.kernel_size = kernel_size
        flat = [o * in_channels + i for o, row in enumerate(table) for i in row]
        self.register_buffer("index", torch.tensor(flat, dtype=torch.long), persistent=False)
        self.weight = nn.Parameter(torch.empty(len(flat), kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(self.out_channels))
        if self.weight.is_meta:  # shapes only (cnnkit summary): nothing to fill
            return
        fan_in = torch.tensor([len(row) * kernel_size**2 for row in table for _ in row])
        bound = (2.4 / fan_in.float().sqrt()).view(-1, 1, 1)  # uniform +-2.4/sqrt(F_i)
        with torch.no_grad():
            self.weight.copy_((torch.rand(self.weight.shape) * 2 - 1) * bound)
            self.bias.zero_()

    def full_weight(self) -> torch.Tensor:
        """(out, in, k, k) filter bank with zeros where the table has no connection."""
        k = self.kernel_size
        full = self.weight.new_zeros(self.out_channels * self.in_channels, k, k)
        full = full.index_copy(0, self.index, self.weight)
        return full.view(self.out_channels, self.in_channels, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.full_weight(), self.bias)

    def macs(self, out_shape: tuple[int, ...]) -> int:
        """Multiply-adds per image: each output pixel of map o costs |table[o]| * k * k."""
        h, w = out_shape[-2:]
        return int(self.weight.shape[0]) * self.kernel_size**2 * h * w

    def extra_repr(self) -> str:
        n = self.weight.shape[0]
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, {n=}"


def rbf_codes(num_classes: int, features: int = 84, seed: int = 1998) -> torch.Tensor:
    """Fixed +-1 prototypes (num_classes, features), the same for any model with these sizes."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    bits = torch.randint(0, 2, (num_classes, features), generator=g, device="cpu")
    return bits.float() * 2 - 1


class RBFOutput(nn.Module):
    prototypes: torch.Tensor
    """Euclidean RBF units: y_i = sum_j (x_j - w_ij)^2 with fixed prototypes w (a buffer, not
    trained). Returns logits -y_i / temperature, (N, 84) -> (N, num_classes)."""

    def __init__(self, in_features: int, num_classes: int, temperature: float = 10.0) -> None:
        super().__init__()
        self.temperature = temperature
        self.in_features = in_features
        self.num_classes = num_classes
        self.register_buffer("prototypes", torch.empty(num_classes, in_features))
        with torch.no_grad():
            self.prototypes.copy_(rbf_codes(num_classes, in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d2 = (x.unsqueeze(1) - self.prototypes.unsqueeze(0)).pow(2).sum(-1)  # (N, classes)
        return -d2 / self.temperature

    def macs(self, out_shape: tuple[int, ...]) -> int:
        return self.num_classes * self.in_features


class LeNet5(nn.Module):
    """The 1998 LeNet-5; see the module docstring. (N, C, 32, 32) -> (N, num_classes)."""

    head_prefixes = ("output.",)

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(in_channels, 6, kernel_size=5)  # (N, 6, 28, 28)
        self.act1 = ScaledTanh()
        self.s2 = Subsampling(6)  # (N, 6, 14, 14)
        self.act2 = ScaledTanh()
        self.c3 = PartialConv2d(6, C3_TABLE, kernel_size=5)  # (N, 16, 10, 10)
        self.act3 = ScaledTanh()
        self.s4 = Subsampling(16)  # (N, 16, 5, 5)
        self.act4 = ScaledTanh()
        self.c5 = nn.Conv2d(16, 120, kernel_size=5)  # (N, 120, 1, 1)
        self.act5 = ScaledTanh()
        self.f6 = nn.Linear(120, 84)  # (N, 84)
        self.act6 = ScaledTanh()
        self.output = RBFOutput(84, num_classes)  # (N, num_classes)
        if self.c1.weight.is_meta:
            return
        for m in (self.c1, self.c5, self.f6):  # U(+-2.4/sqrt(F_i)), F_i fan-in (module doc)
            bound = 2.4 / m.weight[0].numel() ** 0.5
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-2:] != (32, 32):
            raise ShapeError(
                f"LeNet-5 expects (N, C, 32, 32). Got {tuple(x.shape)}",
                hint="resize or pad the input to 32x32 (8x8 digits: upsample by 4)",
            )
        x = self.act2(self.s2(self.act1(self.c1(x))))  # (N, 6, 14, 14)
        x = self.act4(self.s4(self.act3(self.c3(x))))  # (N, 16, 5, 5)
        x = self.act5(self.c5(x)).flatten(1)  # (N, 120)
        x = self.act6(self.f6(x))  # (N, 84)
        return self.output(x)  # (N, num_classes)


class LeNet5Modern(nn.Module):
    """Textbook LeNet-5: conv 6 -> ReLU -> max pool -> conv 16 -> ReLU -> max pool -> FC 120 ->
    FC 84 -> FC num_classes. (N, C, 32, 32) -> (N, num_classes)."""

    head_prefixes = ("classifier.4.",)

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5),  # (N, 6, 28, 28)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (N, 6, 14, 14)
            nn.Conv2d(6, 16, kernel_size=5),  # (N, 16, 10, 10)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (N, 16, 5, 5)
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),
            nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-2:] != (32, 32):
            raise ShapeError(
                f"LeNet-5 expects (N, C, 32, 32). Got {tuple(x.shape)}",
                hint="resize or pad the input to 32x32 (8x8 digits: upsample by 4)",
            )
        x = self.features(x).flatten(1)  # (N, 400)
        return self.classifier(x)


@register_model(input_size=(1, 32, 32), default_num_classes=10)
def lenet5(*, weights: Any = None, num_classes: int = 10, **kw: Any) -> LeNet5:
    """LeNet-5 as in the 1998 paper: 60,000 trainable parameters, fixed RBF output."""
    progress, download = kw.pop("progress", True), kw.pop("download", False)
    model = LeNet5(num_classes=num_classes, **kw)
    return load_pretrained(
        model, "lenet5", weights, num_classes, progress=progress, download=download
    )


@register_model(input_size=(1, 32, 32), default_num_classes=10)
def lenet5_modern(*, weights: Any = None, num_classes: int = 10, **kw: Any) -> LeNet5Modern:
    """LeNet-5 as textbooks draw it today: ReLU, max pools, full C3, linear output."""
    progress, download = kw.pop("progress", True), kw.pop("download", False)
    model = LeNet5Modern(num_classes=num_classes, **kw)
    return load_pretrained(
        model, "lenet5_modern", weights, num_classes, progress=progress, download=download
    )
