"""``python -m trubrics_otel`` is the ``trubrics-otel`` command."""

import sys

from trubrics_otel.cli import main

sys.exit(main())
