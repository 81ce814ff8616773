"""`python -m relayer.cli`: the `relayer` command."""

import sys

from relayer.cli.commands import main

sys.exit(main())
