"""Writes the built-in class names `cnndsl run --labels imagenet|voc` shows: cnndsl/views/labels/*.txt.

The names are the data sets' own labels, as torchvision lists them for its pretrained weights (the order of
the classifier's outputs): ImageNet-1k's 1000 and Pascal VOC's 21 (the segmentation models'). Run once with an
interpreter that has torchvision; the files are committed, so cnndsl never needs torchvision:

    PYTHONPATH=. /path/to/python-with-torchvision tools/class_names.py
"""

from __future__ import annotations

from pathlib import Path

from torchvision.models import _meta

OUT = Path(__file__).resolve().parent.parent / "cnndsl" / "views" / "labels"


def main() -> None:
    for name, labels in (("imagenet", _meta._IMAGENET_CATEGORIES), ("voc", _meta._VOC_CATEGORIES)):
        path = OUT / f"{name}.txt"
        labels = ["background" if label == "__background__" else label for label in labels]
        path.write_text("".join(f"{label}\n" for label in labels), encoding="utf-8")
        print(f"wrote {path} ({len(labels)} names)")


if __name__ == "__main__":
    main()
