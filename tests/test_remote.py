"""The HTTP black-box: a served model answers through RemoteModel exactly as the local one would.

Every server here binds 127.0.0.1 on a free port and is shut down by the fixture.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
import torch

from vidattack import LabelOracle, ScoreOracle, methods
from vidattack.attacks.vbad import vbad
from vidattack.remote import RemoteModel, RemoteModelError, make_server


@pytest.fixture
def serve(toy_model):
    servers = []

    def start(top_k: int = 1) -> str:
        server = make_server(toy_model, "127.0.0.1", 0, top_k=top_k)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        host, port = server.server_address[:2]
        return f"http://{host}:{port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_remote_oracles_see_what_the_local_ones_see(serve, toy_model, toy_data) -> None:
    videos, _ = toy_data
    remote = RemoteModel(serve(top_k=1), batch_size=4)  # two requests per oracle call
    assert remote.num_classes == 3 and remote.top_k == 1
    local_scores, remote_scores = ScoreOracle(toy_model).query(videos), ScoreOracle(remote).query(videos)
    assert torch.equal(local_scores.labels, remote_scores.labels)
    assert torch.allclose(local_scores.probs, remote_scores.probs, atol=1e-6)
    assert torch.equal(LabelOracle(toy_model).query(videos), LabelOracle(remote).query(videos))


def test_top_k_answers_keep_probabilities_and_order(serve, toy_model, toy_data) -> None:
    videos, _ = toy_data
    remote = RemoteModel(serve(top_k=2))
    pseudo = remote(videos[:5])
    with torch.no_grad():
        probs, indices = toy_model(videos[:5]).softmax(1).topk(2, dim=1)
    remote_probs, remote_indices = pseudo.softmax(1).topk(2, dim=1)
    assert torch.equal(indices, remote_indices)
    assert torch.allclose(probs, remote_probs, atol=1e-6)


def test_attack_through_http_and_server_side_audit(serve, toy_model, toy_data) -> None:
    videos, labels = toy_data
    keep = labels == 2
    video, label = videos[keep][:1], labels[keep][:1]
    remote = RemoteModel(serve())
    oracle = ScoreOracle(remote, budget=2000)
    result = vbad(oracle, video, label, generator=torch.Generator().manual_seed(0),
                  tentative="static", partition="uniform", patches=4)
    assert bool(result.success[0])
    with torch.no_grad():
        assert int(toy_model(result.adversarial).argmax(1)[0]) != int(label[0])
    # What the service saw is exactly what the oracle counted and the attack reported.
    assert remote.info()["videos"] == oracle.queries == int(result.queries[0]) <= 2000


def test_white_box_methods_are_refused_for_remote_models(serve, toy_data) -> None:
    videos, labels = toy_data
    remote = RemoteModel(serve())
    with pytest.raises(ValueError, match="white-box"):
        methods.run("pgd", remote, videos[:1], labels[:1])
    with pytest.raises(ValueError, match="no gradients"):
        remote(videos[:1].clone().requires_grad_(True))


def test_bad_requests_and_unreachable_services(serve) -> None:
    url = serve()
    with pytest.raises(urllib.error.HTTPError) as bad_body:
        urllib.request.urlopen(urllib.request.Request(url + "/v1/classify", data=b"not npy", method="POST"))
    assert bad_body.value.code == 400 and "npy" in json.loads(bad_body.value.read())["error"]
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(url + "/v2/whatever")
    assert missing.value.code == 404
    out_of_range = torch.full((1, 8, 3, 16, 16), 2.0)
    with pytest.raises(RemoteModelError, match="400"):
        RemoteModel(url)._classify(out_of_range)
    with pytest.raises(RemoteModelError, match="cannot reach"):
        RemoteModel("http://127.0.0.1:9", timeout=2)
    with pytest.raises(ValueError, match="http"):
        RemoteModel("ftp://example")
