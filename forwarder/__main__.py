"""`python -m forwarder ...` and the `alb-log-forwarder` console script."""

from __future__ import annotations

import sys

from forwarder.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
