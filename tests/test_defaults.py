"""One home for each default and registry name: the CLI, the library and the app read the same values."""

from __future__ import annotations

from hashviz import defaults


def test_method_names_known_without_torch_equal_the_registry():
    from hashviz.heads.losses import METHOD_NAMES, list_methods

    assert tuple(list_methods()) == METHOD_NAMES


def test_every_surface_reads_the_defaults_from_one_module():
    from hashviz.data.registry import DEFAULT_DATASET
    from hashviz.features.backbones import DEFAULT_BACKBONE
    from hashviz.heads import train as T
    from hashviz.pipeline import DEFAULT_BITS, DEFAULT_HEAD, DEFAULT_QUANTIZERS
    from hashviz.session.runs import DEFAULT_RUN

    assert DEFAULT_DATASET == defaults.DATASET and DEFAULT_BACKBONE == defaults.BACKBONE
    assert (DEFAULT_HEAD, DEFAULT_BITS, DEFAULT_QUANTIZERS) == (defaults.HEAD, defaults.BIT_LENGTHS,
                                                                 defaults.QUANTIZERS)
    assert DEFAULT_RUN == {"dataset": defaults.DATASET, "backbone": defaults.BACKBONE, "head": defaults.HEAD}
    assert (T.DEFAULT_EPOCHS, T.DEFAULT_LR, T.DEFAULT_HIDDEN) == (defaults.HEAD_EPOCHS, defaults.HEAD_LR,
                                                                  defaults.HEAD_HIDDEN)


def test_cli_choices_come_from_the_registries(capsys):
    import pytest

    from hashviz import cli
    from hashviz.data import dataset_names
    from hashviz.heads.losses import list_methods
    from hashviz.quantize import QUANTIZERS

    parser = cli.build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["prepare", "--help"])
    help_text = capsys.readouterr().out
    for name in list(list_methods()) + list(QUANTIZERS) + dataset_names():
        assert name in help_text
    args = parser.parse_args(["prepare", "--head", "SDSH"])  # an alias resolves to its method
    assert args.head == "spherical" and args.dataset == defaults.DATASET and args.backbone == defaults.BACKBONE
    with pytest.raises(SystemExit):
        parser.parse_args(["prepare", "--head", "deepbit"])
    assert "invalid choice: 'deepbit'" in capsys.readouterr().err
