"""`python -m cnndsl` works like the `cnndsl` command."""

import sys

from cnndsl.cli import entry

sys.argv[0] = "cnndsl"
entry()
