"""``python -m monitor.cli``: the ``monitor`` command without its console script."""

import sys

from monitor.cli import main

sys.exit(main())
