"""The OpenAPI 3.1 document of the HTTP APIs (``/openapi.json``) and the ``/docs`` page that
renders it.

- :mod:`.operations` (with :mod:`.model` and the ``table_*`` modules): the route table, one
  entry per method and path, naming the protocol Structs it takes and returns;
- :mod:`.document`: the generator (``components/schemas`` from ``msgspec``);
- :mod:`.page`: the HTML rendering, no script; :mod:`.routes`: the two routes.
"""

from .document import build_document
from .routes import api_docs_routes, document_bytes

__all__ = ["api_docs_routes", "build_document", "document_bytes"]
