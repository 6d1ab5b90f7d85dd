"""The README's pasted command output is real: every ``$ cnndsl ...`` block is run and compared.

Blocks fenced as ```text are illustrations (machine-dependent or needing files not shipped).
"""

from __future__ import annotations

import glob
import re
import shlex

import pytest
from helpers import ROOT

from cnndsl.layers import REGISTRY

README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = [b for b in re.findall(r"```\n(\$ cnndsl .*?)```", README, flags=re.S)]


def _run(cli, command: str) -> str:
    head = None
    if "| head -" in command:
        command, n = command.split("| head -")
        head = int(n)
    args = []
    for word in shlex.split(command)[1:]:
        args += sorted(glob.glob(word)) if "*" in word else [word]
    result = cli(*args)
    text = result.stdout if result.exit_code == 0 else result.stderr
    lines = text.rstrip("\n").splitlines()
    return "\n".join(lines[:head] if head else lines)


@pytest.mark.parametrize("block", BLOCKS, ids=[b.splitlines()[0][2:60] for b in BLOCKS])
def test_readme_output_is_current(block, monkeypatch, tmp_path, update_goldens, cli):
    """Standard output (standard error for a failing command); --update-goldens rewrites the block.
    Commands run in an empty folder that sees the repository's specs/ and tests/, so the files
    they write stay out of the checkout."""
    for name in ("specs", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    command, *expected = block.rstrip("\n").splitlines()
    actual = _run(cli, command[2:])
    if update_goldens and actual != "\n".join(expected):
        text = (ROOT / "README.md").read_text(encoding="utf-8")
        (ROOT / "README.md").write_text(text.replace(block, f"{command}\n{actual}\n"), encoding="utf-8")
        return
    assert actual == "\n".join(expected)


def test_readme_documents_every_layer_kind():
    table = README[README.index("| kind | syntax |"):]
    for kind in REGISTRY:
        assert f"`{kind}`" in table, f"layer kind {kind} is missing from the README's reference"


def test_readme_examples_parse():
    """The language section's example blocks (Inception, bottleneck) check as written."""
    import cnndsl

    start = README.index("An Inception module and a ResNet bottleneck:")
    example = README[start:].split("```")[1]
    net = cnndsl.parse("input 64x56x56\n" + example)
    assert net.output_shape == (512, 28, 28)


def test_readme_inverted_residual_example():
    """The MobileNetV2 block of the language section: the add where the shape allows, the gate, names."""
    import cnndsl

    start = README.index("MobileNetV2's inverted residual")
    example = README[start:].split("```")[1]
    g = cnndsl.parse("input 16x8x8\n" + example + "a: inverted 16\nb: inverted 24 stride=2 se=true expand=1\n").graph
    names = [n.name for n in g.nodes]
    assert "a.add" in names and not [n for n in names if n.startswith("b.") and n.endswith("add")]
    assert {"a.conv.0.0", "a.conv.1.0", "a.conv.2", "b.conv.0.0", "b.conv.1.fc1", "b.conv.1.mul"} <= set(names)
    assert g.nodes[-1].out_shape == (24, 4, 4)


def test_readme_limits_table_matches_the_code():
    from cnndsl.lang import limits

    for variable, value in limits.ENV.values():
        row = next(line for line in README.splitlines() if f"`{variable}`" in line)
        assert f"{value:,}" in row or (value == 2 ** 31 and "2^31" in row), row
