"""What stands in for a container's image: the venv, the interpreter behind it, the sources of the
editable install, all reachable inside a pod even when the checkout is under /tmp."""

from __future__ import annotations

import sys
from pathlib import Path

import optikube_operator
from optikube_testcluster.processnode.agent import image_paths
from optikube_testcluster.processnode.nsinit import PRIVATE_PREFIXES, under


def test_the_image_is_the_venv_with_its_root_the_interpreter_and_the_sources() -> None:
    venv_bin = Path(sys.prefix) / "bin"
    paths = image_paths(str(venv_bin))
    assert str(venv_bin.resolve()) in paths
    assert str(venv_bin.resolve().parent) in paths  # lib/.../site-packages live there
    interpreter = Path(sys.executable).resolve()
    assert any(under(str(interpreter), path) for path in paths)
    source = Path(optikube_operator.__file__).resolve().parents[1]
    assert str(source) in paths


def test_a_private_prefix_would_hide_a_checkout_under_tmp() -> None:
    # the reason the image folders are bound again after a container's /tmp is mounted
    assert any(under("/tmp/checkout/.venv", prefix) for prefix in PRIVATE_PREFIXES)
    assert not under("/tmpfoo/x", "/tmp")
