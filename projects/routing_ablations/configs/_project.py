"""Registers this project's components (the installed ``routing_ablations`` package) and names
the output folder of its variants.

Install the project once with ``pip install -e projects/routing_ablations`` (``make env`` does);
importing the package registers its routers, refiners and policies in mematte_d2's registries.
"""

import routing_ablations  # noqa: F401  (the import registers the components)

OUTPUT_ROOT = "./output/routing_ablations"
