#!/usr/bin/env python
"""Benchmark inference / training latency and peak memory (see mematte_d2/cli/benchmark.py)."""

import sys

from mematte_d2.cli.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
