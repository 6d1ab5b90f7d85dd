"""Images in: an image file read with Pillow as a model's input (`cnndsl run --image`).

Pixels become float32 values in 0..1, scaled by the range of the file's pixel type: 8-bit pixels
(grey, RGB, palette, with or without alpha) as value / 255, the usual scaling of torchvision's
ToTensor; 16-bit grey (Pillow modes I;16*) as value / 65535; 32-bit integer grey (mode I) as
value / 65535 when all its values fit 0..65535 (a 16-bit PGM reads so; with a note), else refused;
float grey (mode F) as given when in 0..1, else refused (its range is unknown). An alpha channel is
ignored (with a note): colours are read as they are, not blended. An image is turned upright as its
EXIF orientation says, then converted to grey ("L", ITU-R 601 luma) for a 1-channel input and to RGB
for 3 (a grey image gives the same value in all three). Pillow is imported only when needed.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np

from cnndsl.errors import RunError

MODES = {1: ("L", "grey"), 3: ("RGB", "RGB")}
ALPHA_MODES = ("LA", "La", "RGBA", "RGBa", "PA")
ORIENTATION = 0x0112  # the EXIF tag
NO_RANGE_HINT = "rescale it to 0..1 or save it as an 8- or 16-bit PNG, or pass the array with --input (.npy)"


RESIZE_MODES = ("crop", "pad", "stretch")
# torchvision's ImageNet preprocessing: per-channel mean and standard deviation of pixels in 0..1
NORMALIZE = {"imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))}


def parse_normalize(text: str, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """``--normalize``: "imagenet", or "MEAN/STD" with one number or one per channel each side
    ("0.5/0.5", "0.485,0.456,0.406/0.229,0.224,0.225"), as (mean, std) arrays shaped to broadcast over CxHxW."""
    if text in NORMALIZE:
        mean, std = NORMALIZE[text]
    else:
        try:
            left, right = text.split("/")
            mean = tuple(float(v) for v in left.split(","))
            std = tuple(float(v) for v in right.split(","))
        except ValueError:
            raise RunError(f"--normalize takes imagenet or MEAN/STD, not '{text}'",
                           hint="e.g. --normalize imagenet, --normalize 0.5/0.5 or "
                                "--normalize 0.485,0.456,0.406/0.229,0.224,0.225") from None
    for name, values in (("mean", mean), ("std", std)):
        if len(values) not in (1, channels):
            raise RunError(f"--normalize gives {len(values)} {name} values; the input has {channels} channel"
                           + ("s" if channels != 1 else ""), hint=f"give 1 or {channels}")
        if not all(np.isfinite(values)):
            raise RunError(f"--normalize's {name} must be finite numbers")
    if min(std) <= 0:
        raise RunError("--normalize's standard deviations must be positive")
    shape = (-1, 1, 1)
    return np.asarray(mean, np.float32).reshape(shape), np.asarray(std, np.float32).reshape(shape)


def load_image(path: str, input_shape: tuple, resize: bool | str) -> tuple[np.ndarray, list[str]]:
    """The image at ``path`` as a 1xCxHxW float32 batch in 0..1 for a model whose input is
    ``input_shape`` (N, C, H, W), and notes for stderr. A size that differs is refused unless
    ``resize``: "crop" (or True) scales it so that it covers the input and keeps the centre, as
    torchvision's Resize and CenterCrop do; "pad" scales it to fit inside and fills the rest with
    black (letterbox); "stretch" scales each side on its own. How each pixel type is scaled is in
    the module docstring."""
    if resize is True:
        resize = "crop"
    if resize and resize not in RESIZE_MODES:
        raise RunError(f"unknown resize mode '{resize}'", hint=f"use one of {', '.join(RESIZE_MODES)}")
    from PIL import Image, UnidentifiedImageError

    from cnndsl.io import input_kind, reading

    channels, height, width = _image_input(input_shape)
    kind = input_kind(path)
    if kind is not None:
        raise RunError(f"the image is {kind}, not a file", path=path)
    reading(path)
    notes: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # _open notes it
            with _open(path, notes) as opened:
                opened.load()
                image, decoded = decode(_upright(opened, path, notes), channels, path)
    except FileNotFoundError:
        raise RunError("no such image file", path=path) from None
    except UnidentifiedImageError:
        raise RunError("cannot read the image: not an image format Pillow knows", path=path,
                       hint="use a PNG, JPEG or another format Pillow reads") from None
    except Image.DecompressionBombError as exc:
        raise RunError(f"cannot read the image: {exc}", path=path, hint="scale it down first") from None
    except OSError as exc:
        raise RunError(f"cannot read the image: {exc.strerror or exc}", path=path) from None
    notes += decoded + [f"reading {path}: {w.message}" for w in caught]
    want = (width if isinstance(width, int) else image.width, height if isinstance(height, int) else image.height)
    if image.size != want:
        got, need = f"{image.width}x{image.height}", f"{want[0]}x{want[1]}"
        if not resize:
            raise RunError(f"the image is {got} pixels (width x height); the model's input is {need}",
                           path=path, hint=f"pass --resize to scale it to {need}, or crop it to that size")
        image, how = _fit(image, want, resize)
        notes.append(f"resized {path} from {got} to {need} pixels" + (f", {how}" if how else ""))
    pixels = np.asarray(image, dtype=np.float32)
    pixels = np.clip(pixels, 0, 1) if image.mode == "F" else pixels / 255.0  # Lanczos overshoots a little
    pixels = pixels.transpose(2, 0, 1) if pixels.ndim == 3 else np.repeat(pixels[None], channels, axis=0)
    return pixels[None], notes


def _fit(image, want: tuple[int, int], mode: str):
    """``image`` resized to ``want`` (width, height) by ``mode``, and how, for the note ("" where the
    aspect ratio was already the same: nothing is cropped or padded)."""
    from PIL import Image

    lanczos = Image.Resampling.LANCZOS
    if image.width * want[1] == image.height * want[0]:
        return image.resize(want, lanczos), ""
    if mode == "stretch":
        return image.resize(want, lanczos), "stretched (the aspect ratio is not kept)"
    cover = mode == "crop"
    scale = (max if cover else min)(want[0] / image.width, want[1] / image.height)
    size = tuple(max(1, round(side * scale)) for side in image.size)
    if cover:  # never short of the frame by rounding
        size = (max(size[0], want[0]), max(size[1], want[1]))
    scaled = image.resize(size, lanczos)
    left, top = (size[0] - want[0]) // 2, (size[1] - want[1]) // 2
    if cover:
        return scaled.crop((left, top, left + want[0], top + want[1])), \
            f"scaled to {size[0]}x{size[1]} and centre-cropped (the aspect ratio is kept)"
    frame = Image.new(image.mode, want, 0)
    frame.paste(scaled, (-left, -top))
    return frame, f"scaled to {size[0]}x{size[1]} and letterboxed with black (the aspect ratio is kept)"


_LIMIT = threading.Lock()


def _open(path: str, notes: list[str]):
    """Pillow's lazy image at ``path``, with Pillow's decompression-bomb limits checked here so
    that the messages give the pixel count: over the limit a note, over twice the limit an error."""
    from PIL import Image

    with _LIMIT:  # Pillow's limit is a global: two threads must not unset and restore it crosswise
        limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None  # only while reading the header; the check follows
        try:
            image = Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = limit
    pixels = image.width * image.height
    size = f"{image.width}x{image.height} = {pixels:,} pixels"
    if limit and pixels > 2 * limit:
        image.close()
        raise RunError(f"the image is {size}, more than Pillow's limit of {2 * limit:,} (a guard against "
                       "decompression bombs)", path=path, hint="scale it down first, e.g. with an image editor")
    if limit and pixels > limit:
        notes.append(f"{path} is a large image: {size}; reading it takes time and memory")
    return image


def _upright(image, path: str, notes: list[str]):
    """``image`` turned as its EXIF orientation says (a camera held sideways)."""
    from PIL import ImageOps

    if image.getexif().get(ORIENTATION, 1) in (1, None):
        return image
    notes.append(f"turned {path} upright as its EXIF orientation says")
    return ImageOps.exif_transpose(image)


def decode(image, channels: int, path: str):
    """(a new image: 8-bit "L" or "RGB" for ``channels``, or "F" grey in 0..1 for deeper pixels; notes).
    Deep pixels are scaled by their type's range, or refused where it is unknown."""
    from PIL import Image

    notes = []
    mode = image.mode
    if mode in ("P", "PA"):
        image = image.convert("RGBA" if mode == "PA" or "transparency" in image.info else "RGB")
    if image.mode in ALPHA_MODES:
        see_through = image.getchannel(image.mode[-1]).getextrema()[0] < 255  # not just an opaque alpha
    else:
        see_through = "transparency" in image.info
    if see_through:
        notes.append(f"{path} has transparency (alpha); --image ignores it and reads the colours as they are")
    if mode.startswith("I;16"):
        return Image.fromarray(np.asarray(image, dtype=np.float32) / np.float32(65535)), notes
    if mode in ("I", "F"):
        values = np.asarray(image)
        if not np.isfinite(values).all():
            raise RunError("the image has NaN or infinite pixels", path=path, hint=NO_RANGE_HINT)
        low, high = values.min().item(), values.max().item()
        if mode == "F":
            if low < 0 or high > 1:
                raise RunError(f"float pixels (Pillow mode F) from {low:.4g} to {high:.4g}: --image takes float "
                               "pixels as they are, so they must be in 0..1", path=path, hint=NO_RANGE_HINT)
            return Image.fromarray(values.astype(np.float32)), notes
        if low < 0 or high > 65535:
            raise RunError(f"32-bit integer pixels (Pillow mode I) from {low:,} to {high:,}: --image reads them "
                           "as 16-bit, so they must be in 0..65535", path=path, hint=NO_RANGE_HINT)
        notes.append(f"{path} has 32-bit integer pixels (Pillow mode I), all in 0..65535: read as 16-bit, "
                     "value / 65535")
        return Image.fromarray(values.astype(np.float32) / np.float32(65535)), notes
    try:
        return image.convert(MODES[channels][0]), notes
    except ValueError:
        raise RunError(f"cannot convert a Pillow mode {mode} image to {MODES[channels][1]}", path=path,
                       hint="save it as a grey or RGB PNG first") from None


def _image_input(input_shape: tuple) -> tuple[int, object, object]:
    """(channels, height, width) of a model input that an image can feed, or a RunError."""
    dims = tuple(input_shape[1:])
    shown = "x".join(map(str, dims))
    if len(dims) != 3:
        raise RunError(f"--image needs a model whose input is an image CxHxW; this one's input is {shown}",
                       hint="use --input with a .npy or .txt file of the right shape")
    if dims[0] not in MODES:
        raise RunError(f"--image reads grey (1 channel) or RGB (3 channel) images; the model's input has "
                       f"{dims[0]} channels ({shown})", hint="use --input with a .npy array of the right shape")
    return dims
