#!/usr/bin/env python
"""Serve the web app on 127.0.0.1:7860 (see mematte_d2/app/launch.py and docs/app.md)."""

import sys

from mematte_d2.app.launch import main

if __name__ == "__main__":
    sys.exit(main())
