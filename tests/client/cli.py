"""``python -m tests.client.cli ARGS``: the ``cnnlab`` command, with the client commands
registered even where ``cnnlab.cli.COMMAND_MODULES`` does not list them yet."""

from __future__ import annotations

import sys

from cnnlab import cli

if __name__ == "__main__":
    if "cnnlab.cli.remote" not in cli.COMMAND_MODULES:
        cli.COMMAND_MODULES = (*cli.COMMAND_MODULES, "cnnlab.cli.remote")  # type: ignore[assignment]
    sys.exit(cli.main())
