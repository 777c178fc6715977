#!/usr/bin/env python
"""Predict alpha mattes for image files or folders (see mematte_d2/cli/predict.py)."""

import sys

from mematte_d2.cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
