"""`cnndsl run`: a model or a spec on an input, with onnxruntime; the output, top classes or feature maps."""

from __future__ import annotations

import os

import click

from cnndsl import api
from cnndsl.cli.group import chosen, edge, load, main, spec_options
from cnndsl.errors import CnnDslError
from cnndsl.views import results
from cnndsl.views.term import echo_err


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--input", "input_path", type=click.Path(dir_okay=False),
              help="Input: .npy, .npz, or .txt/.csv numbers (default: seeded random).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--top", default=5, show_default=True, type=click.IntRange(min=1),
              help="Classes to show for a classifier.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Seed for weights (spec) and random input.")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1),
              help="Batch size of the random input.")
@click.option("--image", "image_path", type=click.Path(dir_okay=False),
              help="Input: an image file (PNG, JPEG, TIFF, ...), grey or RGB per the model's input, pixels "
                   "scaled to 0..1 by their type's range (8-bit /255, 16-bit /65535); one sample.")
@click.option("--resize", type=click.Choice(["crop", "pad", "stretch"]), is_flag=False, flag_value="crop",
              default=None, help="Resize an --image whose size differs from the model's input: crop (the default: "
              "cover the input, keep the centre, as torchvision's Resize + CenterCrop), pad (fit inside, black "
              "bars) or stretch (the aspect ratio is not kept).")
@click.option("--weights", "weights_path", type=click.Path(dir_okay=False),
              help="A spec's trained weights, by name, from .safetensors, .npz or .onnx (as compile --weights); "
                   "without them a spec runs on seeded random weights.")
@click.option("--normalize", metavar="imagenet|MEAN/STD",
              help="Normalise an --image's pixels per channel after scaling them to 0..1, as the network was trained: "
                   "imagenet (torchvision's mean 0.485,0.456,0.406 and std 0.229,0.224,0.225), or MEAN/STD "
                   "(one number, or one per channel, each side).")
@click.option("--labels", metavar="imagenet|voc|FILE",
              help="Name the classes: imagenet (ImageNet-1k's 1000), voc (Pascal VOC's 21, the segmentation "
                   "models'), or a text file of one name a line, in the order of the outputs.")
@click.option("--save-maps", type=click.Path(file_okay=False),
              help="Write each output map as a PNG, a labelled grid.png (the input beside the maps) and, for "
                   "several class maps, mask.png (the arg-max class of each pixel, coloured) into this folder.")
@click.option("--layer", "layers", multiple=True, metavar="NAME",
              help="Show this layer's maps instead of the output (a spec's layer or block name, as `summary` "
                   "lists them; repeat it for several; `all`: every conv layer). With --save-maps, each "
                   "layer's maps go into a folder of its own, DIR/NAME/.")
@click.option("--scale", type=click.Choice(["layer", "map"]), default="layer", show_default=True,
              help="Colour scale of the maps: one for all maps of a layer (so that they compare: signed maps "
                   "blue-white-red around 0, the others grey from 0), or one for each map.")
@click.option("--clip", type=click.FloatRange(0, 50, max_open=True), default=1.0, show_default=True,
              help="Percent of the largest magnitudes left out of a colour scale's limit (drawn at its end), so "
                   "that a few extreme values (border artefacts) do not wash out the rest; 0 keeps them all.")
@click.option("--force", is_flag=True, help="Let --save-maps replace files in its folder that cnndsl did not write.")
@spec_options
@edge
def run(model: str, input_path: str | None, device: str, top: int, seed: int, batch: int, image_path: str | None,
        resize: str | None, weights_path: str | None, normalize: str | None, labels: str | None,
        save_maps: str | None,
        layers: tuple[str, ...], scale: str, clip: float, force: bool) -> None:
    """Run a compiled .onnx model or a spec with onnxruntime; says which provider ran.

    \b
    Example: cnndsl run specs/conv_example.cnn --input specs/conv_example_image.txt
             cnndsl run specs/filters.cnn --image photo.png --resize --save-maps maps/
             cnndsl run specs/alexnet.cnn --image photo.jpg --resize --layer features.0 --save-maps maps/
             cnndsl run specs/resnet50.cnn --weights resnet50.safetensors --image cat.jpg --resize \\
               --normalize imagenet --labels imagenet
    """
    _check_input_options(input_path, image_path, resize, batch)
    if normalize and not image_path:
        raise click.UsageError("--normalize applies to --image (an --input array is given as the network takes it)")
    names_of_classes = None
    if labels:
        from cnndsl.views.labels import load_labels

        names_of_classes = load_labels(labels)
    names = _layer_names(model, layers)
    if save_maps:
        from cnndsl.views.maps import check_folder

        check_folder(save_maps, force)
        if os.path.isdir(save_maps):  # a new folder has nothing in the way
            for name in names:
                check_folder(os.path.join(save_maps, name), force)
    runner = api.runner(api.model_source(model, seed, batch, *chosen(), layers=tuple(names),
                                         weights=weights_path)[0], device=device)
    if runner.note:
        echo_err(f"note: {runner.note}")
    if save_maps:
        from cnndsl.views.maps import check_maps_shape

        for k, out in enumerate(runner.session.get_outputs()[:len(names) or 1]):  # without --layer: the output
            check_maps_shape(tuple(out.shape), names[k] if names else None)
    if names_of_classes is not None and not names:
        from cnndsl.views.labels import check_labels

        shape = runner.session.get_outputs()[0].shape
        if len(shape) in (2, 4) and isinstance(shape[1], int):
            check_labels(names_of_classes, shape[1], labels)
    x, source, notes = api.model_input(runner.input_shape, input_path, image_path, resize, seed, batch, normalize)
    for note in notes:
        echo_err(f"note: {note}")
    x = runner.check_input(x)
    bad_in = results.nonfinite(x)
    if bad_in:
        echo_err(f"warning: {bad_in:,} of {x.size:,} input values are NaN or infinite")
    outputs = runner.run_all(x)
    y = outputs[0][1]
    bad = sum(results.nonfinite(values) for _, values in outputs)
    size = sum(values.size for _, values in outputs)
    if bad and bad_in:
        echo_err(f"warning: {bad:,} of {size:,} output values are NaN or infinite (from the input's)")
    elif bad:
        echo_err(f"warning: {bad:,} of {size:,} output values are NaN or infinite (an overflow: in a float16 "
                 "model, try compiling as float32)")
    click.echo(f"provider: {runner.provider} ({'GPU' if runner.on_gpu else 'CPU'})")
    click.echo(f"input: {'x'.join(map(str, x.shape))} from {source}")
    for k, (name, values) in enumerate(outputs):
        if names:  # a layer's maps are not class scores: their shape and range
            click.echo(f"layer {names[k]}: {'x'.join(map(str, values.shape))}")
            click.echo(results.range_line(values))
            continue
        click.echo(f"output{'' if len(outputs) == 1 else ' ' + name}: {'x'.join(map(str, values.shape))}")
        click.echo("\n".join(_described(values, top, names_of_classes if k == 0 else None)))
    if not model.lower().endswith(".onnx") and not weights_path and load(model).totals.params:
        echo_err(f"note: the weights are random (seeded with --seed {seed}): the network has learned nothing, so "
                 "its classes and maps show what an untrained network does; give trained ones with --weights FILE")
    if save_maps:
        picture = _picture(image_path, x.shape, resize) if image_path else None
        if names:
            from cnndsl.views.maps import channel_labels

            net = load(model)
            os.makedirs(save_maps, exist_ok=True)
            for name, (_, values) in zip(names, outputs, strict=True):
                labels = channel_labels(net.upto(name).graph)
                _save_maps(model, values, os.path.join(save_maps, name), image_path or input_path, force, scale,
                           clip, picture, layer=name, labels=labels)
        else:
            _save_maps(model, y, save_maps, image_path or input_path, force, scale, clip, picture)


def _described(y, top: int, labels: list[str] | None = None) -> list[str]:
    """An output in words: a classifier's top classes, a segmentation's classes of pixels (named by
    ``labels``), the values of a small output, or the range of a large one."""
    if y.ndim == 2 and y.shape[1] > 1:
        return results.top_lines(y, top, labels)
    if y.ndim == 4 and y.shape[1] > 1 and y.shape[2] * y.shape[3] > 1:
        return results.pixel_class_lines(y, top, labels)
    if y.size <= 256:
        return results.value_lines(y)
    return [results.range_line(y)]


def _check_input_options(input_path: str | None, image: str | None, resize: str | None, batch: int) -> None:
    if image and input_path:
        raise click.UsageError("--image and --input are two ways to give the input: use one")
    if resize and not image:
        raise click.UsageError("--resize applies to --image")
    if image and batch != 1:
        raise click.UsageError("--batch sets the size of the random input; --image gives one image (a batch of 1)")


def _layer_names(model: str, layers: tuple[str, ...]) -> list[str]:
    """The layers whose maps were asked for, in order, once each (`all`: every conv layer)."""
    if not layers:
        return []
    if model.lower().endswith(".onnx"):
        raise click.UsageError("--layer needs a spec (.cnn): a compiled model gives only its outputs")
    net = load(model)
    names = [n for name in layers for n in (net.conv_layers if name == "all" else [name])]
    if not names:
        raise click.UsageError(f"{net.name} has no conv layer: name the layers with --layer NAME")
    net.upto(*names)  # an unknown name fails here, with a hint, before anything runs
    return list(dict.fromkeys(names))


def _picture(image_path: str, shape: tuple, resize: str | None):
    """The input as the grid shows it: the image in colour, as the model got it (resized, not normalised),
    even where the model reads it grey; None where it cannot be read so."""
    from cnndsl.views.maps import input_picture

    try:
        x = api.model_input((1, 3, *shape[2:]), image=image_path, resize=resize or False)[0]
    except CnnDslError:
        return None
    return input_picture(x[0])


def _save_maps(model: str, y, folder: str, source: str | None, force: bool, scale: str, clip: float,
               picture, layer: str | None = None, labels: list | None = None) -> None:
    """Write the maps of the first sample as PNGs and a labelled grid (views.maps)."""
    from cnndsl.views.maps import channel_labels, save_maps

    name = os.path.splitext(os.path.basename(model))[0]
    if labels is None:
        labels = []
        if not model.lower().endswith(".onnx"):
            graph = load(model).graph
            labels, name = channel_labels(graph), graph.name
    else:
        name = load(model).name
    if y.ndim == 4 and y.shape[0] > 1:
        echo_err(f"note: saving the maps of the first of {y.shape[0]} samples")
    shown = os.path.basename(source) if source else "a seeded random input"
    mask = layer is None and y.shape[1] > 1
    what = f"{layer} maps" if layer else "output maps"
    written, notes = save_maps(y, folder, labels, f"{name}: {what} for {shown}", force, mask=mask, scale=scale,
                               clip=clip, picture=picture)
    for note in notes:
        echo_err(f"note: {note}")
    extra = written[-2:] if mask else written[-1:]
    count = len(written) - len(extra)
    click.echo(f"wrote {count} map{'' if count == 1 else 's'} and {' and '.join(extra)} to "
               f"{os.path.normpath(folder)}{os.sep}"
               + (" (mask.png: the arg-max class of each pixel, in a fixed palette)" if mask else ""))
