"""A zoo model served by the kserve package's own ModelServer (REST only), on 127.0.0.1.

Run as a script by tests/test_remote_interop.py: ``python kserve_video_server.py MODEL``. It binds a free
loopback port, prints it on the first line of stdout, then serves ``/v2/models/MODEL`` until killed.
The model answers its logits as output ``logits`` (FP32 ``[N, K]``), in one forward per request.
"""

from __future__ import annotations

import socket
import sys

import torch
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.protocol.rest.server import RESTServer

from vidattack import models


class VideoModel(Model):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.net = models.load(name)
        self.ready = True

    def get_input_types(self) -> list[dict]:
        height, width = self.net.input_size
        return [{"name": "video", "datatype": "FP32", "shape": [-1, self.net.num_frames, 3, height, width]}]

    def get_output_types(self) -> list[dict]:
        return [{"name": "logits", "datatype": "FP32", "shape": [-1, len(self.net.class_names)]}]

    def predict(self, payload: InferRequest, headers: dict | None = None) -> InferResponse:
        videos = torch.from_numpy(payload.inputs[0].as_numpy().astype("float32"))
        with torch.inference_mode():
            logits = self.net(videos).float().numpy()
        output = InferOutput(name="logits", shape=list(logits.shape), datatype="FP32")
        output.set_data_from_numpy(logits, binary_data=False)
        return InferResponse(response_id=payload.id or "", model_name=self.name, infer_outputs=[output])


def main() -> None:
    torch.set_num_threads(1)
    model = VideoModel(sys.argv[1])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = ModelServer(http_port=sock.getsockname()[1], enable_grpc=False, workers=1)
    server.register_model(model)
    rest = RESTServer(FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension,
                      sock.getsockname()[1], workers=1)
    print(sock.getsockname()[1], flush=True)
    rest.run(sockets=[sock])  # bound to 127.0.0.1 above: never 0.0.0.0


if __name__ == "__main__":
    main()
