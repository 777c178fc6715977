#!/usr/bin/env python
"""Export a model with a fixed token budget to ONNX (see mematte_d2/cli/export.py)."""

import sys

from mematte_d2.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
