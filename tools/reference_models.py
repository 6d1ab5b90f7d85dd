"""Two small PyTorch reference models that cnndsl specs can be checked against (needs torch only).

``UNet``: the U-Net of Ronneberger, Fischer and Brox, "U-Net: Convolutional Networks for Biomedical
Image Segmentation" (MICCAI 2015), Fig. 1 as drawn: input 1x572x572, output 2x388x388. Every 3x3
convolution is unpadded ("valid") with a bias and is followed by a ReLU; there is no normalisation.
Module tree (state_dict names; every conv has ``.weight`` and ``.bias``)::

    down1.conv1  Conv2d(1, 64, 3)        down1.conv2  Conv2d(64, 64, 3)        572 -> 570 -> 568
    (2x2 max pool, stride 2)                                                   568 -> 284
    down2.conv1  Conv2d(64, 128, 3)      down2.conv2  Conv2d(128, 128, 3)      284 -> 280
    down3.conv1  Conv2d(128, 256, 3)     down3.conv2  Conv2d(256, 256, 3)      140 -> 136
    down4.conv1  Conv2d(256, 512, 3)     down4.conv2  Conv2d(512, 512, 3)       68 -> 64
    bottom.conv1 Conv2d(512, 1024, 3)    bottom.conv2 Conv2d(1024, 1024, 3)     32 -> 28
    up4.upconv   ConvTranspose2d(1024, 512, 2, stride=2)                        28 -> 56
    up4.conv1    Conv2d(1024, 512, 3)    up4.conv2    Conv2d(512, 512, 3)       56 -> 52
    up3.upconv   ConvTranspose2d(512, 256, 2, stride=2)                         52 -> 104
    up3.conv1    Conv2d(512, 256, 3)     up3.conv2    Conv2d(256, 256, 3)      104 -> 100
    up2.upconv   ConvTranspose2d(256, 128, 2, stride=2)                        100 -> 200
    up2.conv1    Conv2d(256, 128, 3)     up2.conv2    Conv2d(128, 128, 3)      200 -> 196
    up1.upconv   ConvTranspose2d(128, 64, 2, stride=2)                         196 -> 392
    up1.conv1    Conv2d(128, 64, 3)      up1.conv2    Conv2d(64, 64, 3)        392 -> 388
    head         Conv2d(64, 2, 1)                                              2 x 388 x 388

``upK`` joins with the output of ``downK`` (its conv2, before pooling): that map is centre-cropped to
the upsampled size (the crop starts at ``(H - h) // 2`` on each axis) and the two are concatenated
on channels, the cropped skip FIRST, then the upsampled map; conv1 then sees 2x the upconv's
channels. 31,030,658 parameters, no buffers, 150,428,424,448 multiply-accumulates per sample
(FlopCounterMode // 2; a transposed conv counts in_h * in_w * C_in * C_out * k * k).

``ConvAutoencoder``: a small teaching autoencoder, 1x28x28 -> 1x28x28::

    encoder.conv1    Conv2d(1, 16, 3, stride=2, padding=1) + ReLU               16 x 14 x 14
    encoder.conv2    Conv2d(16, 32, 3, stride=2, padding=1) + ReLU               32 x 7 x 7
    decoder.deconv1  ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1) + ReLU     16 x 14 x 14
    decoder.deconv2  ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1) + Sigmoid   1 x 28 x 28

All with bias: 9,569 parameters, no buffers, 508,032 multiply-accumulates per sample.

    python tools/reference_models.py      # prints shapes and counts of both
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

UNET_CHANNELS = (64, 128, 256, 512, 1024)


class DoubleConv(nn.Module):
    """Two valid 3x3 convolutions with bias, each followed by a ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3)
        self.conv2 = nn.Conv2d(cout, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(x))))


class UpStep(nn.Module):
    """2x2 stride-2 transposed conv halving the channels, crop-and-concat the skip, two valid convs."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.upconv = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        self.conv1 = nn.Conv2d(2 * cout, cout, 3)
        self.conv2 = nn.Conv2d(cout, cout, 3)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.upconv(x)
        h, w = x.shape[-2:]
        top = (skip.shape[-2] - h) // 2
        left = (skip.shape[-1] - w) // 2
        skip = skip[..., top : top + h, left : left + w]
        x = torch.cat([skip, x], dim=1)
        return F.relu(self.conv2(F.relu(self.conv1(x))))


class UNet(nn.Module):
    """Ronneberger et al. 2015, Fig. 1: 1x572x572 -> 2x388x388 (names in the module docstring)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = UNET_CHANNELS
        self.down1 = DoubleConv(in_channels, c1)
        self.down2 = DoubleConv(c1, c2)
        self.down3 = DoubleConv(c2, c3)
        self.down4 = DoubleConv(c3, c4)
        self.bottom = DoubleConv(c4, c5)
        self.up4 = UpStep(c5, c4)
        self.up3 = UpStep(c4, c3)
        self.up2 = UpStep(c3, c2)
        self.up1 = UpStep(c2, c1)
        self.head = nn.Conv2d(c1, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.down1(x)
        s2 = self.down2(F.max_pool2d(s1, 2, 2))
        s3 = self.down3(F.max_pool2d(s2, 2, 2))
        s4 = self.down4(F.max_pool2d(s3, 2, 2))
        x = self.bottom(F.max_pool2d(s4, 2, 2))
        x = self.up4(x, s4)
        x = self.up3(x, s3)
        x = self.up2(x, s2)
        x = self.up1(x, s1)
        return self.head(x)


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(x))))


class Decoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.deconv1 = nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1)
        self.deconv2 = nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.deconv2(F.relu(self.deconv1(x))))


class ConvAutoencoder(nn.Module):
    """1x28x28 -> 16x14x14 -> 32x7x7 -> 16x14x14 -> 1x28x28 (names in the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = Encoder()
        self.decoder = Decoder()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


# name -> (class, input (C, H, W)); tools/torchvision_keys.py --segmentation uses these.
MODELS = {"unet": (UNet, (1, 572, 572)), "autoencoder": (ConvAutoencoder, (1, 28, 28))}


def main() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    for name, (cls, shape) in MODELS.items():
        model = cls().eval()
        with torch.no_grad(), FlopCounterMode(display=False) as flops:
            y = model(torch.zeros(1, *shape))
        params = sum(p.numel() for p in model.parameters())
        buffers = sum(b.numel() for b in model.buffers())
        print(f"{name}: {list(shape)} -> {list(y.shape[1:])}, {params:,} params, {buffers} buffers, "
              f"{flops.get_total_flops() // 2:,} MACs")


if __name__ == "__main__":
    main()
