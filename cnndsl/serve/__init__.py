"""`cnndsl serve`: the playground, a local web page that checks, counts, draws and runs a spec as it is typed.

``work`` does the work (pure functions of the spec text, through the API and the views), ``app`` is the
HTTP face (Starlette, served by uvicorn), ``static`` holds the page, its style and its one script (built
from ``playground/`` in the source tree; the built file is shipped, so using it needs no node).
"""
