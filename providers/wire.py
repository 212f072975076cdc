"""For the router and custom transports; not a stable API.

What the router needs of this package and a user does not: the wire adapters
(:class:`Adapter`, :func:`adapter_for`) and what they give back (:class:`Answer`,
:class:`Delta`), the body stream a transport hands over (:class:`ByteStream`),
and a few helpers of planning and stream assembly. Names here may change in any
release; the stable API is :mod:`switchyard.providers`.
"""

from ._adapters import Adapter, adapter_for
from ._exchange import ByteStream
from ._gateway import Wire, env_var
from ._index import ModelOffers
from ._params import MAY_DROP
from ._reply import Answer, Delta
from ._toolcalls import ToolCallAssembler

__all__ = [
    "MAY_DROP",
    "Adapter",
    "Answer",
    "ByteStream",
    "Delta",
    "ModelOffers",
    "ToolCallAssembler",
    "Wire",
    "adapter_for",
    "env_var",
]
