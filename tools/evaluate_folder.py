#!/usr/bin/env python
"""Evaluate a folder of predicted mattes (see mematte_d2/cli/evaluate_folder.py)."""

import sys

from mematte_d2.cli.evaluate_folder import main

if __name__ == "__main__":
    sys.exit(main())
