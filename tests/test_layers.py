"""Layer rules as data: one row per (declaration, input) with its output shape, counts and MACs.

Every expectation below was worked out by hand from the rules in /work/shared/LINEAGE.md:
    out = floor((in + pad_begin + pad_end - dilation*(k-1) - 1) / stride) + 1
    conv params = C_out * (C_in/groups) * kh * kw (+ C_out bias); conv MACs = C_out*H_out*W_out * (C_in/groups)*kh*kw
    dense params = units*inputs (+ units); dense MACs = units*inputs
    pools, activations, norms: no MACs; batchnorm: 2C trainable + 2C buffers
    ceil mode: the division rounds up, but a last window starting inside the end padding is dropped.
The arithmetic is written out in the comments so a reviewer can redo it.
"""

from __future__ import annotations

import pytest
from helpers import assert_error, err

import cnndsl
from cnndsl.layers import REGISTRY, bind

T, B, C = "trainable", "buffer", "constant"


def row(decl, inp, out, params=0, macs=0, *, buffers=0, constants=0, weights=None, marks=()):
    """One rule row. ``weights``: {param name: (shape, role)} for the first node, checked exactly."""
    return pytest.param(decl, inp, tuple(out), params, macs, buffers, constants, weights,
                        id=f"{decl} @ {inp}", marks=marks)


# A list of matrices is documented as "one map each" (OUTxKHxKW), but is read as one map over
# len(list) input channels (1xINxKHxKW).


RULES = [
    # ---- conv ------------------------------------------------------------------------------
    # 32-3+1 = 30; params 16*3*9+16 = 448; MACs 16*30*30 * 3*9 = 388,800
    row("conv 16 3x3", "3x32x32", (16, 30, 30), 448, 388_800,
        weights={"0.weight": ((16, 3, 3, 3), T), "0.bias": ((16,), T)}),
    # int kernel means square: 4+2-3+1 = 4; params 8*9+8 = 80; MACs 8*16*9 = 1,152
    row("conv 8 3 pad=1", "1x4x4", (8, 4, 4), 80, 1_152),
    # non-square kernel: H 20-3+1 = 18, W 20-5+1 = 16; params 8*3*15+8 = 368; MACs 8*18*16*45 = 103,680
    row("conv 8 3x5", "3x20x20", (8, 18, 16), 368, 103_680,
        weights={"0.weight": ((8, 3, 3, 5), T), "0.bias": ((8,), T)}),
    # stride 2: floor((32-3)/2)+1 = 15; params 8*27+8 = 224; MACs 8*225*27 = 48,600
    row("conv 8 3x3 stride=2", "3x32x32", (8, 15, 15), 224, 48_600),
    # stride HxW 2x1: H 15, W 30; MACs 8*15*30*27 = 97,200
    row("conv 8 3x3 stride=2x1", "3x32x32", (8, 15, 30), 224, 97_200),
    # the course's worked example sizes on 5x5 (see also test_examples.py)
    row("conv 8 3x3 pad=valid", "1x5x5", (8, 3, 3), 80, 648),   # 8*9*9
    row("conv 8 3x3 pad=same", "1x5x5", (8, 5, 5), 80, 1_800),  # 8*25*9
    # same + stride 2: ceil(5/2) = 3 (pads 1+1: floor((5+2-3)/2)+1 = 3); MACs 8*9*9
    row("conv 8 3x3 pad=same stride=2", "1x5x5", (8, 3, 3), 80, 648),
    # same with stride HxW: ceil(7/2) = 4, ceil(7/3) = 3; params 2*9+2 = 20; MACs 2*12*9 = 216
    row("conv 2 3x3 stride=2x3 pad=same", "1x7x7", (2, 4, 3), 20, 216),
    # int pad: 8+2-3+1 = 8; params 4*2*9+4 = 76; MACs 4*64*18 = 4,608
    row("conv 4 3x3 pad=1", "2x8x8", (4, 8, 8), 76, 4_608),
    # HxW pad 2x0: H 8+4-2 = 10, W 8-2 = 6; MACs 4*60*18 = 4,320
    row("conv 4 3x3 pad=2x0", "2x8x8", (4, 10, 6), 76, 4_320),
    # (top, left, bottom, right) = (0,1,2,3): H 8+0+2-2 = 8, W 8+1+3-2 = 10; MACs 4*80*18 = 5,760
    row("conv 4 3x3 pad=(0, 1, 2, 3)", "2x8x8", (4, 8, 10), 76, 5_760),
    # per-side pads with stride 2: H floor((9+1+0-3)/2)+1 = 4, W floor((9+0+2-3)/2)+1 = 5
    # params 4*9+4 = 40; MACs 4*20*9 = 720
    row("conv 4 3x3 stride=2 pad=(1, 0, 0, 2)", "1x9x9", (4, 4, 5), 40, 720),
    # dilation 2: effective 5, 9-5+1 = 5; params 4*9+4 = 40; MACs 4*25*9 = 900
    row("conv 4 3x3 dilation=2", "1x9x9", (4, 5, 5), 40, 900),
    # dilation with same padding keeps 9x9 (pads 2+2); MACs 4*81*9 = 2,916
    row("conv 4 3x3 dilation=2 pad=same", "1x9x9", (4, 9, 9), 40, 2_916),
    # dilation HxW 1x3: H 9-3+1 = 7, W 9-7+1 = 3; MACs 4*21*9 = 756
    row("conv 4 3x3 dilation=1x3", "1x9x9", (4, 7, 3), 40, 756),
    # groups 2: params 8*(4/2)*9+8 = 152; out 4x4; MACs 8*16*2*9 = 2,304
    row("conv 8 3x3 groups=2", "4x6x6", (8, 4, 4), 152, 2_304,
        weights={"0.weight": ((8, 2, 3, 3), T), "0.bias": ((8,), T)}),
    # depthwise, no bias: params 4*1*9 = 36; MACs 4*36*9 = 1,296
    row("conv 4 3x3 groups=4 pad=1 bias=false", "4x6x6", (4, 6, 6), 36, 1_296,
        weights={"0.weight": ((4, 1, 3, 3), T)}),
    # 1x1, no bias: params 16*8 = 128; MACs 16*49*8 = 6,272
    row("conv 16 1x1 bias=false", "8x7x7", (16, 7, 7), 128, 6_272, weights={"0.weight": ((16, 8, 1, 1), T)}),
    # LeNet C1 with fused tanh: 32-5+1 = 28; params 6*25+6 = 156; MACs 6*784*25 = 117,600
    row("conv 6 5x5 tanh", "1x32x32", (6, 28, 28), 156, 117_600),
    # same + stride 2 + fused relu: ceil(224/2) = 112 (pads 0+1); params 64*27+64 = 1,792;
    # MACs 64*112*112*27 = 21,676,032
    row("conv 64 3x3 stride=2 pad=same relu", "3x224x224", (64, 112, 112), 1_792, 21_676_032),
    # AlexNet conv1: (227-11)/4+1 = 55; params 96*363+96 = 34,944; MACs 96*3025*363 = 105,415,200
    row("conv 96 11x11 stride=4", "3x227x227", (96, 55, 55), 34_944, 105_415_200),
    # keyword arguments for positional fields
    row("conv filters=8 kernel=3x3 act=relu", "1x5x5", (8, 3, 3), 80, 648),

    # ---- convtranspose (deconv) ----------------------------------------------------------------
    # out = (in-1)*stride - 2*pad + dilation*(k-1) + output_pad + 1 per axis (PyTorch's ConvTranspose2d)
    # weight C_in x (FILTERS/G) x kh x kw; params C_in*(FILTERS/G)*kh*kw (+ FILTERS bias)
    # MACs = C_in*H_in*W_in * (FILTERS/G)*kh*kw: every input value meets FILTERS/G kernels (torch's
    # FlopCounterMode counts twice that)
    # U-Net up-conv: 27*2 + 1 + 1 = 56; params 128*64*4+64 = 32,832; MACs 128*784*64*4 = 25,690,112
    row("convtranspose 64 2x2 stride=2", "128x28x28", (64, 56, 56), 32_832, 25_690_112,
        weights={"0.weight": ((128, 64, 2, 2), T), "0.bias": ((64,), T)}),
    # 3*2 - 2 + 2 + 1 + 1 = 8; params 8*4*9+4 = 292; MACs 8*16*4*9 = 4,608
    row("convtranspose 4 3x3 stride=2 pad=1 output_pad=1", "8x4x4", (4, 8, 8), 292, 4_608,
        weights={"0.weight": ((8, 4, 3, 3), T), "0.bias": ((4,), T)}),
    # size= sets output_pad: without it 3*2 - 2 + 2 + 1 = 7, so 8x8 takes output_pad 1; as above
    row("deconv 4 3x3 stride=2 pad=1 size=8x8", "8x4x4", (4, 8, 8), 292, 4_608),
    # size= per axis: 3*2 + 2 + 1 = 9, so 10x9 takes output_pad 1x0; params 1*2*9+2 = 20; MACs 16*2*9 = 288
    row("convtranspose 2 3x3 stride=2 size=10x9", "1x4x4", (2, 10, 9), 20, 288),
    # dilation 2: 4 + 2*2 + 1 = 9; params 4*6*9+6 = 222; MACs 4*25*6*9 = 5,400
    row("convtranspose 6 3x3 dilation=2", "4x5x5", (6, 9, 9), 222, 5_400),
    # groups 2: weight 4 x 6/2 x 3 x 3; 4 + 2 + 1 = 7; params 4*3*9+6 = 114; MACs 4*25*3*9 = 2,700
    row("convtranspose 6 3x3 groups=2", "4x5x5", (6, 7, 7), 114, 2_700,
        weights={"0.weight": ((4, 3, 3, 3), T), "0.bias": ((6,), T)}),
    # depthwise, no bias (FCN's fixed-size upsampler): 5*2 - 2 + 3 + 1 = 12; params 4*1*16 = 64;
    # MACs 4*36*1*16 = 2,304
    row("convtranspose 4 4x4 stride=2 pad=1 groups=4 bias=false", "4x6x6", (4, 12, 12), 64, 2_304,
        weights={"0.weight": ((4, 1, 4, 4), T)}),
    # 1x1, no bias: 7; params 8*16 = 128; MACs 8*49*16 = 6,272
    row("convtranspose 16 1x1 bias=false", "8x7x7", (16, 7, 7), 128, 6_272, weights={"0.weight": ((8, 16, 1, 1), T)}),
    # per-axis stride and pad: H 4*2 - 0 + 1 + 1 = 10, W 4*1 - 2 + 2 + 1 = 5; params 2*3*6+3 = 39;
    # MACs 2*25*3*6 = 900
    row("convtranspose 3 2x3 stride=2x1 pad=0x1", "2x5x5", (3, 10, 5), 39, 900,
        weights={"0.weight": ((2, 3, 2, 3), T), "0.bias": ((3,), T)}),
    # fused relu: 2*2 + 1 + 1 = 6; params 16*8*4+8 = 520; MACs 16*9*8*4 = 4,608
    row("convtranspose 8 2x2 stride=2 relu", "16x3x3", (8, 6, 6), 520, 4_608),
    # keywords for the positional fields, an int kernel: 2*2 + 1 + 1 = 6; params 4*4*4+4 = 68; MACs 4*9*4*4 = 576
    row("deconv filters=4 kernel=2 stride=2", "4x3x3", (4, 6, 6), 68, 576),

    # ---- fixedconv (constants, never trainable) -------------------------------------------------
    # 2-D: one 3x3 map on 1x5x5 -> 1x3x3; 9 constants; MACs 9*9 = 81
    row("fixedconv [[0, 0, 1], [1, 0, 0], [0, 0, 1]]", "1x5x5", (1, 3, 3), 0, 81, constants=9,
        weights={"0.weight": ((1, 1, 3, 3), C)}),
    # same padding keeps 64x64; MACs 4096*9 = 36,864
    row("fixedconv [[0, 0, 0], [0, 1, 0], [0, 0, 0]] pad=same", "1x64x64", (1, 64, 64), 0, 36_864, constants=9),
    # 3-D: two 2x2 maps -> weight 2x1x2x2; 4-2+1 = 3; MACs 2*9*4 = 72
    row("fixedconv [[[1, 0], [0, 1]], [[0, 1], [1, 0]]]", "1x4x4", (2, 3, 3), 0, 72, constants=8,
        weights={"0.weight": ((2, 1, 2, 2), C)}),
    # 4-D: OUTxINxKHxKW = 1x2x2x2 on 2 channels; 5-2+1 = 4; MACs 16*2*4 = 128
    row("fixedconv [[[[1, 0], [0, 1]], [[1, 1], [1, 1]]]]", "2x5x5", (1, 4, 4), 0, 128, constants=8,
        weights={"0.weight": ((1, 2, 2, 2), C)}),
    # one bias broadcast to 3 maps: 3 kernel values + 3 bias values; MACs 3*16*1 = 48
    row("fixedconv [[[1]], [[2]], [[3]]] bias=0.5", "1x4x4", (3, 4, 4), 0, 48, constants=6,
        weights={"0.weight": ((3, 1, 1, 1), C), "0.bias": ((3,), C)}),
    row("fixedconv [[[[1]]], [[[2]]], [[[3]]]] bias=0.5", "1x4x4", (3, 4, 4), 0, 48, constants=6,
        weights={"0.weight": ((3, 1, 1, 1), C), "0.bias": ((3,), C)}),
    # bias list + stride 2: floor((5-1)/2)+1 = 3; 2+2 constants; MACs 2*9 = 18
    row("fixedconv [[[1]], [[2]]] bias=[1, 2] stride=2", "1x5x5", (2, 3, 3), 0, 18, constants=4),
    row("fixedconv [[[[1]]], [[[2]]]] bias=[1, 2] stride=2", "1x5x5", (2, 3, 3), 0, 18, constants=4),
    # 3-D with one matrix is one map either way: 1x1x2x2; 3-2+1 = 2; MACs 4*4 = 16
    row("fixedconv [[[1, 2], [3, 4]]]", "1x3x3", (1, 2, 2), 0, 16, constants=4,
        weights={"0.weight": ((1, 1, 2, 2), C)}),
    # fused activation: 3-2+1 = 2; MACs 4*4 = 16
    row("fixedconv [[1, 1], [1, 1]] relu", "1x3x3", (1, 2, 2), 0, 16, constants=4),

    # ---- maxpool ---------------------------------------------------------------------------
    row("maxpool 2x2", "3x4x4", (3, 2, 2)),                        # stride defaults to the kernel
    row("maxpool 2", "3x4x4", (3, 2, 2)),                          # int kernel
    row("maxpool 2x2 stride=2", "1x5x5", (1, 2, 2)),               # floor(3/2)+1 = 2
    row("maxpool 2x2 stride=2 ceil", "1x5x5", (1, 3, 3)),          # ceil(3/2)+1 = 3; window 2 starts at 4 < 5
    row("maxpool 3x3 stride=2", "64x112x112", (64, 55, 55)),       # floor(109/2)+1 = 55
    row("maxpool 3x3 stride=2 floor", "64x112x112", (64, 55, 55)),
    row("maxpool 3x3 stride=2 ceil", "64x112x112", (64, 56, 56)),  # ceil(109/2)+1 = 56 (GoogLeNet)
    row("maxpool 3x3 stride=2 ceil", "96x110x110", (96, 55, 55)),  # ZFNet: 110 -> 55 (floor gives 54)
    row("maxpool 3x3 stride=2", "96x110x110", (96, 54, 54)),
    row("maxpool 3x3 stride=2 ceil", "1x6x6", (1, 3, 3)),          # ceil(3/2)+1 = 3 (floor: 2); start 4 < 6
    # padding 1 + ceil, kept: ceil((6+2-3)/2)+1 = 4 (floor 3); last window starts at 2*3-1 = 5, a real pixel
    row("maxpool 3x3 stride=2 pad=1 ceil", "1x6x6", (1, 4, 4)),
    row("maxpool 3x3 stride=2 pad=1", "1x6x6", (1, 3, 3)),
    # padding 1 + ceil, dropped: ceil((5+2-2)/2)+1 = 4, but window 4 would start at 3*2-1 = 5,
    # inside the right padding (pixels 0..4), so it is dropped: 3. Floor gives 5//2+1 = 3 too.
    row("maxpool 2x2 stride=2 pad=1 ceil", "1x5x5", (1, 3, 3)),
    row("maxpool 3x3 stride=1 pad=same", "8x10x10", (8, 10, 10)),  # pads 1+1
    row("maxpool 2x3 stride=2x3", "1x8x9", (1, 4, 3)),             # 8/2, 9/3
    # pad HxW 1x0: H floor((7+2-3)/2)+1 = 4, W floor((7-3)/2)+1 = 3
    row("maxpool 3x3 stride=2 pad=1x0", "1x7x7", (1, 4, 3)),

    # ---- avgpool ---------------------------------------------------------------------------
    row("avgpool 2x2 stride=2", "6x28x28", (6, 14, 14)),
    row("avgpool 3x3 stride=1 pad=1 count_pad=false", "4x7x7", (4, 7, 7)),
    row("avgpool 3x3 stride=1 pad=1 count_pad=true", "4x7x7", (4, 7, 7)),
    row("avgpool 3x3 stride=2", "1x8x8", (1, 3, 3)),               # floor(5/2)+1 = 3
    row("avgpool 3x3 stride=2 ceil", "1x8x8", (1, 4, 4)),          # ceil(5/2)+1 = 4; start 6 < 8
    # pad 1 + ceil, kept: ceil((8+2-3)/2)+1 = 5 (floor 4); last start 4*2-1 = 7 is a real pixel
    row("avgpool 3x3 stride=2 pad=1 ceil", "2x8x8", (2, 5, 5)),
    row("avgpool 3x3 stride=2 pad=1", "2x8x8", (2, 4, 4)),
    # pad 1 + ceil, dropped: ceil((7+2-2)/2)+1 = 5, but window 5 starts at 4*2-1 = 7, in the padding
    # (pixels 0..6): 4. Floor: 7//2+1 = 4.
    row("avgpool 2x2 stride=2 pad=1 ceil count_pad=false", "3x7x7", (3, 4, 4)),
    # same: ceil(9/2) = 5, pads 1+1
    row("avgpool 3x3 stride=2 pad=same", "2x9x9", (2, 5, 5)),

    # ---- global and adaptive pools ------------------------------------------------------------
    row("globalavgpool", "512x7x7", (512, 1, 1)),
    row("globalavgpool", "3x5x9", (3, 1, 1)),
    row("globalmaxpool", "8x3x5", (8, 1, 1)),
    row("adaptiveavgpool 6x6", "256x6x6", (256, 6, 6)),            # identity (AlexNet at 224)
    row("adaptiveavgpool 7x7", "512x14x14", (512, 7, 7)),          # divisible: a 2x2/2 pool
    row("adaptiveavgpool 1x1", "8x5x5", (8, 1, 1)),
    row("adaptiveavgpool 2x3", "1x4x9", (1, 2, 3)),
    row("adaptiveavgpool 2x2", "3x7x7", (3, 2, 2)),                # windows [0,4) [3,7): a 4x4/3 pool
    # uneven windows: 5 -> 3 takes [0,2) [1,4) [3,5); GoogLeNet's aux heads 14 -> 4, [0,4) [3,7) [7,11)
    # [10,14) (starts 0, 3, 7, 10); larger than the input, 3 -> 5: [0,1) [0,2) [1,2) [1,3) [2,3)
    row("adaptiveavgpool 3x3", "3x5x5", (3, 3, 3)),
    row("adaptiveavgpool 4x4", "512x14x14", (512, 4, 4)),
    row("adaptiveavgpool 5x4", "2x3x3", (2, 5, 4)),
    row("adaptiveavgpool 2", "3x8x8", (3, 2, 2)),

    # ---- dense, flatten, dropout -----------------------------------------------------------------
    # params 10*100+10 = 1,010; MACs 1,000
    row("dense 10", "100", (10,), 1_010, 1_000, weights={"0.weight": ((10, 100), T), "0.bias": ((10,), T)}),
    row("dense 300 relu", "784", (300,), 235_500, 235_200),        # 300*784 = 235,200
    row("dense 5 bias=false", "20", (5,), 100, 100, weights={"0.weight": ((5, 20), T)}),
    row("dense 84 tanh", "120", (84,), 10_164, 10_080),            # 84*120 = 10,080
    row("dense units=3 act=sigmoid", "4", (3,), 15, 12),
    # linear: dense on the channels of each pixel; weight UNITS x C (PyTorch's Linear), not UNITS x C x 1 x 1
    # ConvNeXt-T stage 1: params 384*96+384 = 37,248; MACs 384*96*56*56 = 115,605,504
    row("linear 384", "96x56x56", (384, 56, 56), 37_248, 115_605_504,
        weights={"0.weight": ((384, 96), T), "0.bias": ((384,), T)}),
    # params 8*32 = 256; MACs 8*32*3*5 = 3,840
    row("linear 8 bias=false", "32x3x5", (8, 3, 5), 256, 3_840, weights={"0.weight": ((8, 32), T)}),
    row("linear 16 gelu", "4x2x2", (16, 2, 2), 80, 256),           # 16*4+16; 16*4*4
    row("linear 10", "100", (10,), 1_010, 1_000,                    # on a flat input it is dense
        weights={"0.weight": ((10, 100), T), "0.bias": ((10,), T)}),
    row("flatten", "16x5x5", (400,)),
    row("flatten", "1x1x1", (1,)),
    row("flatten", "10", (10,)),
    row("dropout 0.5", "4096", (4096,)),
    row("dropout", "3x4x4", (3, 4, 4)),
    row("dropout 0", "3x4x4", (3, 4, 4)),
    row("droppath 0.2", "96x56x56", (96, 56, 56)),                # stochastic depth: the identity here
    row("droppath", "10", (10,)),
    row("droppath 1", "3x4x4", (3, 4, 4)),                         # torchvision allows p = 1
    row("stochastic_depth 0.5", "3x4x4", (3, 4, 4)),

    # ---- normalisation ---------------------------------------------------------------------
    # 2C trainable (weight, bias) + 2C buffers (running mean, var)
    row("batchnorm", "64x56x56", (64, 56, 56), 128, 0, buffers=128,
        weights={"0.weight": ((64,), T), "0.bias": ((64,), T),
                 "0.running_mean": ((64,), B), "0.running_var": ((64,), B)}),
    row("batchnorm eps=0.001", "16", (16,), 32, 0, buffers=32),
    row("lrn 5", "96x55x55", (96, 55, 55)),
    row("lrn 5 alpha=1e-4 beta=0.75 k=2", "96x27x27", (96, 27, 27)),
    # layernorm: 2C trainable (weight, bias), no buffers, no MACs; over channels at each pixel
    row("layernorm", "96x56x56", (96, 56, 56), 192, weights={"0.weight": ((96,), T), "0.bias": ((96,), T)}),
    row("layernorm eps=1e-6", "768", (768,), 1_536, weights={"0.weight": ((768,), T), "0.bias": ((768,), T)}),
    row("layernorm", "1x3x3", (1, 3, 3), 2),
    # layerscale: C trainable, named by the layer itself ("0", no ".weight"); Cx1x1 on an image
    row("layerscale", "96x56x56", (96, 56, 56), 96, weights={"0": ((96, 1, 1), T)}),
    row("layerscale 0.1", "768", (768,), 768, weights={"0": ((768,), T)}),
    row("layerscale init=1", "2x1x1", (2, 1, 1), 2),

    # ---- softmax and activations -------------------------------------------------------------
    row("softmax", "10", (10,)),
    row("softmax axis=1", "3x4x4", (3, 4, 4)),
    row("softmax axis=3", "3x4x5", (3, 4, 5)),
    row("relu", "3x4x4", (3, 4, 4)),
    row("relu", "7", (7,)),
    row("relu6", "3x4x4", (3, 4, 4)),
    row("tanh", "3x4x4", (3, 4, 4)),
    row("sigmoid", "5", (5,)),
    row("leakyrelu", "3x4x4", (3, 4, 4)),
    row("leakyrelu 0.2", "3x4x4", (3, 4, 4)),
    row("leaky_relu 0.1", "6", (6,)),
    row("elu", "3x4x4", (3, 4, 4)),
    row("elu 0.5", "3x4x4", (3, 4, 4)),
    row("gelu", "3x4x4", (3, 4, 4)),
    row("gelu approximate=tanh", "8", (8,)),
    row("identity", "3x4x4", (3, 4, 4)),
    row("silu", "3x4x4", (3, 4, 4)),
    row("swish", "6", (6,)),
    row("conv 4 3x3 silu", "3x8x8", (4, 6, 6), 112, 3888),  # fused, like any activation
    row("hardswish", "3x4x4", (3, 4, 4)),
    row("hard_sigmoid", "6", (6,)),
    row("hardsigmoid", "2x3x3", (2, 3, 3)),
    row("hard_swish", "6", (6,)),
    row("conv 4 3x3 hardswish", "3x8x8", (4, 6, 6), 112, 3888),

    # ---- upsample (resize) and crop: no parameters, no MACs ----------------------------------------
    # by SCALE: floor(in * SCALE) on each axis
    row("upsample 2", "3x4x4", (3, 8, 8)),                         # nearest by default
    row("upsample 2 bilinear", "3x5x5", (3, 10, 10)),
    row("upsample 2 bilinear align_corners=true", "1x5x5", (1, 10, 10)),
    row("upsample 2x1", "1x5x5", (1, 10, 5)),                      # H only
    row("upsample 1.5", "1x5x5", (1, 7, 7)),                       # floor(7.5) = 7
    row("upsample (1.5, 2)", "1x5x5", (1, 7, 10)),                 # floor(7.5), 10
    row("upsample 0.5", "1x7x7", (1, 3, 3)),                       # a scale below 1 shrinks: floor(3.5) = 3
    row("upsample scale=4", "2x3x3", (2, 12, 12)),
    row("resize 4 nearest", "8x1x1", (8, 4, 4)),                   # from a 1x1 map (DeepLab's image pool)
    # to a size, whatever the input's
    row("upsample size=7x9", "1x4x4", (1, 7, 9)),
    row("upsample size=520x520 bilinear", "21x65x65", (21, 520, 520)),  # FCN's scores back to the image
    row("upsample size=3x2 bilinear align_corners=true", "1x5x5", (1, 3, 2)),  # a "size" may shrink
    # to an earlier tensor's size: in a one-layer spec `input` is the network's input
    row("upsample to=input bilinear", "2x5x5", (2, 5, 5)),
    row("resize to=input", "4x6x3", (4, 6, 3)),
    # crop: the center SIZE of each map; an int is square
    row("crop 4x4", "3x8x8", (3, 4, 4)),
    row("crop 5x3", "3x8x8", (3, 5, 3)),
    row("crop 388", "64x392x392", (64, 388, 388)),                # U-Net's first copy and crop
    row("crop size=2x2", "3x8x8", (3, 2, 2)),
    row("crop 1x1", "2x1x1", (2, 1, 1)),
    row("crop to=input", "3x8x8", (3, 8, 8)),                      # the whole map: the identity

    # ---- channel shuffle: a permutation, no parameters -------------------------------------------
    row("shuffle 2", "116x28x28", (116, 28, 28)),                  # ShuffleNetV2 x1.0, stage 2
    row("shuffle 3", "6x1x5", (6, 1, 5)),
    row("shuffle 1", "5x2x2", (5, 2, 2)),                          # one group: the identity
    row("shuffle groups=4", "4x3x3", (4, 3, 3)),                   # C groups of one: the identity too
]


# The new kinds' own errors (message, line:col, hint), as in test_check.py's table.
ERRORS = [
    err("shuffle-not-divisible", "input 6x4x4\nshuffle 4\n", "input has 6 channels, not divisible by shuffle "
        "groups=4", 2, 9, "GROUPS must divide the channels"),
    err("shuffle-flat", "input 6\nshuffle 2\n", "shuffle needs a CxHxW input, got 6", 2, 1, "before `flatten`"),
    err("shuffle-no-groups", "input 6x4x4\nshuffle\n", "shuffle needs GROUPS", 2, 1, "usage: shuffle GROUPS"),
    err("shuffle-zero", "input 6x4x4\nshuffle 0\n", "groups must be a positive integer, not 0", 2, 9),
    err("layernorm-eps-zero", "input 6x4x4\nlayernorm eps=0\n", "eps must be positive, not 0", 2, 11),
    err("layernorm-positional", "input 6x4x4\nlayernorm 1e-6\n", "too many arguments for layernorm", 2, 11,
        "usage: layernorm [eps=1e-5]"),
    err("linear-zero", "input 6x4x4\nlinear 0\n", "units must be a positive integer, not 0", 2, 8),
    err("linear-act-typo", "input 6x4x4\nlinear 8 gleu\n", "unexpected word 'gleu' for linear", 2, 10,
        "did you mean 'gelu'?"),
    err("linear-no-units", "input 6x4x4\nlinear\n", "linear needs UNITS", 2, 1, "usage: linear UNITS"),
    err("layerscale-word", "input 6x4x4\nlayerscale small\n", "unexpected word 'small' for layerscale", 2, 12,
        "usage: layerscale [INIT]"),
    err("droppath-too-big", "input 10\ndroppath 1.5\n", "droppath rate must be in [0, 1], not 1.5", 2, 10),
    err("droppath-negative", "input 10\nstochastic_depth rate=-0.1\n", "droppath rate must be in [0, 1], not -0.1",
        2, 18),
    err("layerscale-too-big", "input 6x4x4\nlayerscale 1e39\n", "beyond float32's range", 2, 12),
    # convtranspose: size= it cannot reach (3*2 - 2 + 2 + 1 = 7, +1 with output_pad: 7 or 8), at `size`
    err("convtranspose-size-unreachable", "input 8x4x4\nconvtranspose 4 3x3 stride=2 pad=1 size=10x8\n",
        "convtranspose cannot make 10x8 from 4x4", 2, 36, "ask for a size it can make"),
    err("convtranspose-size-too-small", "input 1x4x4\nconvtranspose 1 3x3 size=5x6\n",
        "convtranspose cannot make 5x6 from 4x4", 2, 21, "ask for a size it can make"),  # 3 + 2 + 1 = 6 only
    err("convtranspose-size-width", "input 1x4x4\ndeconv 1 2x2 stride=2 size=8x10\n",
        "its width can be 8 to 9", 2, 23),  # 3*2 + 1 + 1 = 8, output_pad at most 1
    # output_pad must stay below max(stride, dilation): at `output_pad`
    err("convtranspose-output-pad-stride", "input 8x4x4\nconvtranspose 4 3x3 stride=2 output_pad=2\n",
        "output_pad 2x2 must be smaller than the stride (2 here)", 2, 30, "at most stride - 1"),
    err("convtranspose-output-pad-stride-1", "input 8x4x4\nconvtranspose 4 3x3 output_pad=1\n",
        "output_pad 1x1 must be smaller than the stride", 2, 21),
    err("convtranspose-output-pad-one-axis", "input 8x4x4\nconvtranspose 4 3x3 stride=2x1 output_pad=0x1\n",
        "output_pad 0x1 must be smaller than the stride (1 here)", 2, 32),
    # PyTorch allows output padding below a larger dilation; onnxruntime refuses it at run time
    err("convtranspose-output-pad-dilation", "input 1x4x4\nconvtranspose 2 3x3 dilation=2 output_pad=1\n",
        "output_pad 1x1 must be smaller than the stride (1 here)", 2, 32, "onnxruntime refuses more"),
    err("convtranspose-size-and-output-pad", "input 8x4x4\nconvtranspose 4 3x3 size=6x6 output_pad=1\n",
        "give size= or output_pad=, not both", 2, 30),
    err("convtranspose-groups", "input 6x4x4\nconvtranspose 4 3x3 groups=4\n",
        "6 input channels are not divisible by groups=4", 2, 21),
    err("convtranspose-filters-groups", "input 4x4x4\nconvtranspose 6 3x3 groups=4\n",
        "6 filters are not divisible by groups=4", 2, 21),
    err("convtranspose-empty", "input 8x4x4\nconvtranspose 4 3x3 pad=3\n",
        "convtranspose gives an empty output 0x0 from 4x4", 2, 21),  # 3 - 6 + 2 + 1 = 0
    err("convtranspose-flat", "input 16\nconvtranspose 4 2x2\n", "convtranspose needs a CxHxW input, got 16", 2, 1),
    # upsample: exactly one of SCALE, size= and to=, at the kind
    err("upsample-nothing", "input 1x4x4\nupsample\n", "upsample needs one of SCALE, size=HxW or to=TENSOR", 2, 1,
        "upsample to=input bilinear"),
    err("upsample-mode-only", "input 1x4x4\nupsample bilinear\n", "upsample needs one of SCALE", 2, 1),
    err("upsample-scale-and-size", "input 1x4x4\nupsample 2 size=8x8\n",
        "upsample takes one of SCALE, size= and to=, not several", 2, 1),
    err("upsample-size-and-to", "input 1x4x4\nupsample size=8x8 to=input\n", "not several", 2, 1),
    err("upsample-all-three", "input 1x4x4\nresize 2 size=8x8 to=input bilinear\n", "not several", 2, 1),
    # align_corners goes with bilinear only: at `align_corners`
    err("upsample-align-corners-default-nearest", "input 1x4x4\nupsample 2 align_corners=true\n",
        "align_corners applies to bilinear upsampling only", 2, 12, "bilinear align_corners=true"),
    err("upsample-align-corners-nearest", "input 1x4x4\nupsample 2 nearest align_corners=true\n",
        "align_corners applies to bilinear upsampling only", 2, 20),
    err("upsample-scale-zero", "input 1x4x4\nupsample 0\n", "scale must be a positive number, not 0", 2, 10),
    err("upsample-scale-empty", "input 1x4x4\nupsample 0.1\n", "makes 4x4 empty", 2, 10),  # floor(0.4) = 0
    err("upsample-size-zero", "input 1x4x4\nupsample size=0x2\n", "size must be positive, not 0x2", 2, 10),
    err("upsample-flat", "input 16\nupsample 2\n", "upsample needs a CxHxW input, got 16", 2, 1),
    # crop: at most the input's size; at the size, or at `to`
    err("crop-too-large", "input 1x4x4\ncrop 5x5\n", "cannot crop 5x5 out of a 4x4 input", 2, 6,
        "the size must be at most the input's"),
    err("crop-too-wide", "input 1x4x4\ncrop 3x5\n", "cannot crop 3x5 out of a 4x4 input", 2, 6),
    err("crop-to-larger", "input 1x4x4\nconv 1 3x3\ncrop to=input\n", "cannot crop 4x4 out of a 2x2 input", 3, 6),
    err("crop-nothing", "input 1x4x4\ncrop\n", "crop needs either SIZE or to=TENSOR", 2, 1),
    err("crop-size-and-to", "input 1x4x4\ncrop 2x2 to=input\n", "crop needs either SIZE or to=TENSOR", 2, 1),
    # to= names an earlier statement's label (or `input`): at the name
    err("upsample-to-unknown", "input 1x4x4\nupsample to=down3 bilinear\n",
        "no statement before this one is labelled 'down3'", 2, 13, "`input` is the network's input"),
    err("crop-to-unknown", "input 1x4x4\ncrop to=donw\n", "no statement before this one is labelled 'donw'", 2, 9),
    err("upsample-to-later", "input 1x4x4\nupsample to=d\nd: { relu }\n", "'d' is labelled later (line 3)", 2, 13),
    err("upsample-to-number", "input 1x4x4\nupsample to=3\n", "to names a tensor by its label", 2, 10),
    err("upsample-to-flat", "input 1x4x4\nflat: { flatten }\nfrom input\nupsample to=flat\n",
        "to=flat is 16, which has no height and width", 4, 10),
    err("crop-to-flat-layer", "input 1x4x4\nflat: flatten\nfrom input\ncrop to=flat\n",
        "to=flat is 16, which has no height and width", 4, 6),
]


@pytest.mark.parametrize("text, message, line, col, hint", ERRORS)
def test_error(text, message, line, col, hint):
    assert_error(text, message, line, col, hint)


def build(inp: str, decl: str):
    return cnndsl.parse(f"input {inp}\n{decl}\n", path="t.cnn")


@pytest.mark.parametrize("decl, inp, out, params, macs, buffers, constants, weights", RULES)
def test_layer_rule(decl, inp, out, params, macs, buffers, constants, weights):
    net = build(inp, decl)
    first = net.graph.nodes[0]
    assert first.kind == REGISTRY[decl.split()[0]].kind
    assert first.out_shape == out
    assert net.output_shape == out  # a fused activation keeps the shape
    totals = net.totals
    assert (totals.params, totals.buffers, totals.constants, totals.macs) == (params, buffers, constants, macs)
    assert first.macs == macs
    if weights is not None:
        assert {p.name: (p.shape, p.role) for p in first.params} == weights


def test_layerscale_weight_is_named_by_the_layer_and_starts_at_init():
    """torchvision's ConvNeXt block owns `<block>.layer_scale` (C x 1 x 1), with no `.weight`."""
    net = cnndsl.parse("input 8x4x4\nfeatures: { conv 8 1x1; { conv 8 1x1; layer_scale: layerscale 0.25 } }\n")
    node = net.graph.nodes[-1]
    assert node.name == "features.1.layer_scale"
    assert [(p.name, p.shape, p.role) for p in node.params] == [("features.1.layer_scale", (8, 1, 1), T)]
    assert (node.params[0].init, node.params[0].value) == ("fill", 0.25)
    assert bind(REGISTRY["layerscale"], [])[0].init == 1e-6


def test_per_channel_kinds_need_a_channel_axis():
    """layernorm and layerscale take CxHxW or flat inputs; a spec cannot make any other shape, so the
    shared rule is checked directly."""
    from cnndsl.errors import RuleError
    from cnndsl.layers.base import need_channels

    assert need_channels("layerscale", (4, 2, 2)) == (4, 2, 2) and need_channels("layernorm", (7,)) == (7,)
    with pytest.raises(RuleError, match="layernorm needs a CxHxW or a flat input, got 3x4"):
        need_channels("layernorm", (3, 4))


def test_droppath_is_left_out_of_the_inference_graph_like_dropout():
    """Listed in the summary with its rate, but no ONNX node: the output is the input."""
    net = cnndsl.parse("input 3x4x4\ndroppath 0.3\nrelu\nstochastic_depth\n")
    assert [(n.kind, n.layer.describe(), n.layer.category) for n in net.graph.nodes] == [
        ("droppath", "0.3", "regularization"), ("relu", "", "activation"), ("droppath", "", "regularization")]
    assert [n.op_type for n in net.to_onnx(seed=0).graph.node] == ["Relu"]


def test_to_names_an_earlier_labelled_tensor():
    """`to=LABEL`: the size of a labelled statement's output (a layer or a group), not the input's."""
    net = cnndsl.parse("input 3x9x9\nskip: conv 4 3x3\nmaxpool 2\nupsample to=skip bilinear\ncrop to=skip\n")
    assert [n.out_shape for n in net.graph.nodes] == [(4, 7, 7), (4, 3, 3), (4, 7, 7), (4, 7, 7)]
    net = cnndsl.parse("input 3x9x9\nskip: { conv 4 3x3 }\nupsample 2\ncrop to=skip\n")
    assert net.output_shape == (4, 7, 7)  # 14x14 cropped to the 7x7 of skip


def test_every_kind_has_rows():
    covered = {p.values[0].split()[0] for p in RULES}
    missing = sorted(set(REGISTRY) - covered)
    assert not missing, f"layer kinds without rows in RULES: {missing}"


def test_adaptive_pool_closed_form_matches_its_windows():
    """shapes.adaptive_as_pool (closed form) against PyTorch's window definition, exhaustively."""
    from cnndsl.model.shapes import adaptive_as_pool, adaptive_windows

    for size in range(1, 120):
        for out in range(1, size + 1):
            windows = adaptive_windows(size, out)
            kernel = windows[0][1] - windows[0][0]
            stride = windows[1][0] - windows[0][0] if out > 1 else 1
            even = all(end - start == kernel and start == i * stride for i, (start, end) in enumerate(windows))
            assert adaptive_as_pool(size, out) == ((kernel, stride) if even else None), (size, out)
