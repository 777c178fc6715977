"""``python -m mematte_d2.app``: the same as the ``mematte-app`` command."""

import sys

from mematte_d2.app.launch import main

if __name__ == "__main__":
    sys.exit(main())
