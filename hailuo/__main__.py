"""``python -m hailuo``: the operator's commands (doctor, generate); see ``hailuo.cli``."""

from __future__ import annotations

import sys

from hailuo.cli import main

if __name__ == "__main__":
    sys.exit(main())
