"""`cnndsl summary`: the subtotals of --depth, the join sources, the shares and the training memory, exactly."""

from __future__ import annotations

import pytest
from helpers import SPECS

import cnndsl
from cnndsl.model.ir import TRAINABLE
from cnndsl.views import report


def _rows(text: str) -> list[list[str]]:
    lines = text.splitlines()
    rules = [i for i, line in enumerate(lines) if set(line) == {"-"}]
    return [line.split() for line in lines[rules[0] + 1:rules[1]]]


@pytest.mark.parametrize("spec, depth, names", [
    ("resnet50", 1, ["conv1", "bn1", "(2)", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "(9)", "fc"]),
    ("lenet5", 1, ["features", "(1)", "classifier"]),
    ("lenet5", 2, ["features.0", "features.1", "features.2", "features.3", "features.4", "features.5", "features.6",
                   "features.7", "(1)", "classifier.0", "classifier.1", "classifier.2"]),
])
def test_depth_folds_blocks_into_subtotal_rows(spec, depth, names):
    net = cnndsl.load(SPECS / f"{spec}.cnn")
    rows = _rows(net.summary(depth))
    assert [r[0] for r in rows] == names


def test_a_folded_block_is_named_by_its_call():
    text = cnndsl.load(SPECS / "resnet50.cnn").summary(1)
    line = next(line for line in text.splitlines() if line.startswith("layer2 "))
    assert "block" in line and "stage(128, 4), 42 layers" in line and "1,219,584" in line and "4.8%" in line


def test_subtotals_add_up():
    net = cnndsl.load(SPECS / "resnet50.cnn")
    graph = net.graph
    for depth in (1, 2, 3):
        total = 0
        for _, indices in report._groups(graph, depth):
            total += sum(graph.nodes[i].count(TRAINABLE) for i in indices)
        assert total == net.totals.params


@pytest.mark.parametrize("spec, layer, sources", [
    ("resnet18", "layer1.0.add", "bn2, maxpool"),               # the identity shortcut: the block's input
    ("resnet18", "layer2.0.add", "bn2, downsample.1"),          # the projection shortcut
    ("googlenet", "inception3a.concat", "branch1.1, branch2.1.1, branch3.1.1, branch4.1.1"),
])
def test_a_join_says_where_its_inputs_come_from(spec, layer, sources):
    text = cnndsl.load(SPECS / f"{spec}.cnn").summary()
    line = next(line for line in text.splitlines() if line.startswith(layer + " "))
    assert line.endswith(sources)


def test_training_memory_is_the_formula():
    t = cnndsl.load(SPECS / "lenet5.cnn").totals
    m = report.training_memory(t, 32)
    assert m == {"weights": 246_824, "gradients": 246_824, "sgd_state": 246_824, "adam_state": 493_648,
                 "activations": 32 * 58_888, "total_sgd": 3 * 246_824 + 32 * 58_888,
                 "total_adam": 4 * 246_824 + 32 * 58_888}


def test_training_memory_table_and_batches(cli):
    r = cli("summary", SPECS / "resnet50.cnn", "--batch", "64", "--depth", "1")
    assert r.exit_code == 0, r.output
    table = r.stdout[r.stdout.index("training memory"):].splitlines()
    assert table[1].split() == ["batch", "weights", "gradients", "activations", "total,", "SGD+momentum", "total,",
                                "Adam"]
    assert table[3].split() == ["64", "102.4", "MB", "102.2", "MB", "9.6", "GB", "9.9", "GB", "10.0", "GB"]
    assert len(table) == 4  # one batch size asked for


def test_nothing_to_train_has_no_training_table():
    assert "training memory" not in cnndsl.load(SPECS / "conv_example.cnn").summary()


@pytest.mark.parametrize("part, total, shown", [(0, 10, ""), (1, 10_000, "<0.1%"), (5, 10_000, "0.1%"),
                                                (1, 3, "33.3%"), (10, 10, "100.0%")])
def test_share(part, total, shown):
    assert report.share(part, total) == shown
