"""Attack a model deployed behind the Open Inference Protocol (KServe v2 REST).

Any server that speaks the protocol (KServe, NVIDIA Triton, Seldon MLServer, TorchServe's v2 API,
``vidattack serve``) can be attacked with every black-box method: :class:`RemoteModel` is a callable
from videos ``[N,T,C,H,W]`` in [0, 1] to pseudo-logits ``[N,K]`` that slots under the oracles like a
local model. :mod:`vidattack.remote.protocol` holds the message formats; the server is
:mod:`vidattack.serving`.
"""

from vidattack.remote.client import API_KEY_ENV, BEARER_TOKEN_ENV, RemoteModel, RemoteModelError, is_remote
from vidattack.remote.protocol import ProtocolError, parse_model_url

__all__ = [
    "RemoteModel",
    "RemoteModelError",
    "ProtocolError",
    "is_remote",
    "parse_model_url",
    "API_KEY_ENV",
    "BEARER_TOKEN_ENV",
]
