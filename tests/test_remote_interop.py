"""Interoperability with independent implementations of the Open Inference Protocol, on 127.0.0.1.

* NVIDIA's ``tritonclient.http`` calls ``vidattack serve`` (JSON and binary tensors, classification).
* :class:`RemoteModel` attacks a model served by the ``kserve`` package's own model server (started as a
  subprocess by tests/kserve_video_server.py), with the same result and queries as the local model.

Skipped when the packages (the ``interop`` extra) are not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from vidattack.remote import RemoteModel
from vidattack.serving import ApiKey, ServedModel, build_app, start_server

KEY = "interop-key-0123456789"


def test_tritonclient_calls_vidattack_serve(toy_model, toy_data) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    served = ServedModel("toy", toy_model, frames=8, height=16, width=16, num_classes=3, reveal="probabilities")
    app = build_app([served], keys=[ApiKey.from_secret("triton", KEY)])
    videos = toy_data[0][:3]
    with torch.no_grad():
        expected = toy_model(videos).softmax(1).numpy()
    with start_server(app) as handle:
        client = httpclient.InferenceServerClient(url=handle.url.removeprefix("http://"), network_timeout=10.0)
        # A new dict per call: tritonclient writes Inference-Header-Content-Length into the one it is given.
        def headers() -> dict[str, str]:
            return {"X-API-Key": KEY}

        try:
            assert client.is_server_live() and client.is_server_ready()
            assert client.is_model_ready("toy", headers=headers())
            metadata = client.get_model_metadata("toy", headers=headers())
            assert metadata["inputs"][0]["shape"] == [-1, 8, 3, 16, 16]
            for binary in (True, False):
                tensor = httpclient.InferInput("video", list(videos.shape), "FP32")
                tensor.set_data_from_numpy(videos.numpy(), binary_data=binary)
                full = httpclient.InferRequestedOutput("probabilities", binary_data=binary)
                result = client.infer("toy", [tensor], outputs=[full], headers=headers())
                np.testing.assert_allclose(result.as_numpy("probabilities"), expected, atol=1e-6)
                top = httpclient.InferRequestedOutput("probabilities", binary_data=binary, class_count=2)
                labels = client.infer("toy", [tensor], outputs=[top], headers=headers()).as_numpy("probabilities")
                texts = [item.decode() if isinstance(item, bytes) else item for item in labels[:, 0]]
                assert [int(text.split(":")[1]) for text in texts] == expected.argmax(1).tolist()
            with pytest.raises(Exception, match="API key"):
                client.infer("toy", [tensor])
        finally:
            client.close()
    assert app.state.server.store.used("triton", "toy") == 4 * 3


@pytest.fixture(scope="module")
def kserve_url():
    pytest.importorskip("kserve")
    script = Path(__file__).with_name("kserve_video_server.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen([sys.executable, str(script), "c3d-synth"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    try:
        port = process.stdout.readline().strip()  # the script prints its port once bound
        assert port.isdigit(), "the kserve server did not start"
        url = f"http://127.0.0.1:{port}/v2/models/c3d-synth"
        for _ in range(150):  # up to 30 s for uvicorn to accept
            try:
                RemoteModel(url, retries=0, timeout=2)
                break
            except Exception:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_remote_model_attacks_a_kserve_model_server(kserve_url) -> None:
    from vidattack import methods, models
    from vidattack.data import synthetic

    net = models.load("c3d-synth")
    clips = synthetic.generate("test", synthetic.SynthConfig(), indices=[0])
    videos, labels = clips.videos, clips.labels
    remote = RemoteModel(kserve_url, batch_size=64)  # one request per oracle batch, as the local model runs it
    assert (remote.num_classes, remote.num_frames, remote.input_size) == (10, 16, (32, 32))
    params = {"tentative": "static", "partition": "uniform", "patches": 4}
    local = methods.run("vbad", net, videos, labels, budget=300, seed=0, params=params)
    through = methods.run("vbad", remote, videos, labels, budget=300, seed=0, params=params)
    assert torch.equal(local.queries, through.queries) and int(through.queries[0]) > 0
    assert torch.equal(local.success, through.success)
    assert torch.equal(local.adversarial, through.adversarial)

