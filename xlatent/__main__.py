"""``python -m xlatent``: the same as the ``xlatent`` command."""

import sys

from xlatent.cli import main

sys.exit(main())
