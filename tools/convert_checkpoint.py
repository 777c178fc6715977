#!/usr/bin/env python
"""Convert ViTMatte / Hugging Face weights or check a checkpoint (see mematte_d2/cli)."""

import sys

from mematte_d2.cli.convert_checkpoint import main

if __name__ == "__main__":
    sys.exit(main())
