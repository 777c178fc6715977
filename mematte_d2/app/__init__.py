"""The web app (``mematte-app``): matte photos of any size in a browser, painting the trimap.

Needs the optional extra ``app`` (``pip install .[app]``). Importing this package turns gradio's
analytics off before gradio is imported: the page and the server reach nothing outside the
machine.
"""

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
