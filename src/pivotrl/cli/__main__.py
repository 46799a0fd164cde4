"""``python -m pivotrl.cli``: the same as the ``pivotrl`` command."""

import sys

from pivotrl.cli import app

sys.exit(app())
