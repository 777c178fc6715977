#!/usr/bin/env python
"""Train / evaluate matting models from LazyConfig files (see mematte_d2/cli/train.py)."""

import sys

from mematte_d2.cli.train import cli

if __name__ == "__main__":
    sys.exit(cli())
