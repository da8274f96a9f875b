"""`daskseg --help` names the files the commands it shows really write."""

from __future__ import annotations

import os
import re

from click.testing import CliRunner

from daskseg.cli import main


def test_help_names_the_network_file_net_create_writes(tmp_path):
    runner = CliRunner()
    help_text = runner.invoke(main, ["--help"]).output
    advertised = re.search(r"--network\s+(\S+)", help_text)
    assert advertised, help_text
    net_dir, net_file = os.path.split(advertised.group(1))
    created = runner.invoke(main, ["net", "create", str(tmp_path / net_dir)])
    assert created.exit_code == 0, created.output
    assert (tmp_path / net_dir / net_file).is_file(), sorted(os.listdir(tmp_path / net_dir))
