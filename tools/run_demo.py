#!/usr/bin/env python
"""The README's main command: train + evaluate a small MEMatte on the synthetic set (CPU)."""

import sys

from mematte_d2.cli.demo import main

if __name__ == "__main__":
    sys.exit(main())
