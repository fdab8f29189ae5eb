"""Attacking a deployed model through the Open Inference Protocol, against `vidattack serve` on loopback.

Every server here binds 127.0.0.1 on a free port (vidattack.serving.start_server) and is stopped by
its fixture; every wait is bounded.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
import torch

from vidattack import LabelOracle, ScoreOracle, methods
from vidattack.remote import RemoteModel, RemoteModelError
from vidattack.serving import ApiKey, AuditStore, Limits, ServedModel, build_app, start_server

KEY = "test-key-0123456789"


class Counting:
    """Wraps a model and counts the clips it really ran."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model, self.clips = model, 0

    def __call__(self, videos: torch.Tensor) -> torch.Tensor:
        self.clips += len(videos)
        return self.model(videos)


@pytest.fixture
def serve(toy_model):
    handles = []

    def start(*, reveal="top-k", top_k=1, keys=None, limits=None, model=None, store=None):
        served = ServedModel(
            "toy", model or toy_model, frames=8, height=16, width=16, num_classes=3, reveal=reveal, top_k=top_k
        )
        app = build_app([served], keys=keys, limits=limits, store=store)
        handle = start_server(app)
        handles.append(handle)
        return handle.url + "/v2/models/toy", app.state.server

    yield start
    for handle in handles:
        handle.stop()


def test_remote_oracles_see_what_the_local_ones_see(serve, toy_model, toy_data) -> None:
    videos, _ = toy_data
    url, _ = serve(top_k=1)
    remote = RemoteModel(url, batch_size=4)  # two requests per oracle call
    assert remote.num_classes == 3 and (remote.num_frames, remote.input_size) == (8, (16, 16))
    local_scores, remote_scores = ScoreOracle(toy_model).query(videos), ScoreOracle(remote).query(videos)
    assert torch.equal(local_scores.labels, remote_scores.labels)
    assert torch.allclose(local_scores.probs, remote_scores.probs, atol=1e-6)
    assert torch.equal(LabelOracle(toy_model).query(videos), LabelOracle(remote).query(videos))


@pytest.mark.parametrize("binary", [True, False])
def test_each_reveal_mode_maps_to_what_the_server_shows(serve, toy_model, toy_data, binary) -> None:
    videos = toy_data[0][:4]
    with torch.no_grad():
        logits = toy_model(videos)
    probs = logits.softmax(1)
    url, _ = serve(reveal="probabilities")
    full = RemoteModel(url, binary=binary)
    assert torch.allclose(full(videos).softmax(1), probs, atol=1e-6)
    top2 = RemoteModel(url, binary=binary, top_k=2)  # the classification extension, probabilities
    revealed, indices = top2(videos).softmax(1).topk(2, dim=1)
    expected, expected_indices = probs.topk(2, dim=1)
    assert torch.equal(indices, expected_indices) and torch.allclose(revealed, expected, atol=1e-6)
    url, _ = serve(reveal="logits")
    assert torch.equal(RemoteModel(url, binary=binary)(videos), logits)
    # top-1 logits: only the label is meaningful, and it is exact.
    assert torch.equal(RemoteModel(url, binary=binary, top_k=1)(videos).argmax(1), logits.argmax(1))


def test_a_top_k_server_never_reveals_more_than_k(serve, toy_data) -> None:
    url, _ = serve(reveal="top-k", top_k=1)
    asked_for_all = RemoteModel(url, top_k=3)(toy_data[0][:3]).softmax(1)
    # One class keeps its probability; the two unrevealed share the rest evenly.
    second, third = asked_for_all.topk(3, dim=1).values[:, 1:].unbind(1)
    assert torch.allclose(second, third)


def test_attack_through_the_protocol_equals_the_local_attack_and_the_audit(serve, toy_model, toy_data) -> None:
    videos, labels = toy_data
    video, label = videos[2:3], labels[2:3]  # a clip V-BAD fools within the budget (148 queries locally)
    keys = [ApiKey.from_secret("red-team", KEY, budget=10_000)]
    url, server = serve(reveal="logits", keys=keys, limits=Limits(max_clips_per_request=64))
    remote = RemoteModel(url, api_key=KEY, batch_size=64)  # the oracle's batches go out unsplit
    params = {"tentative": "static", "partition": "uniform", "patches": 4}
    local = methods.run("vbad", toy_model, video, label, budget=600, seed=3, params=params)
    through = methods.run("vbad", remote, video, label, budget=600, seed=3, params=params)
    assert bool(local.success[0]) and bool(through.success[0])
    print("vbad through the protocol:", int(through.queries[0]), "queries")
    assert torch.equal(local.queries, through.queries) and 0 < int(through.queries[0]) <= 600
    assert torch.equal(local.adversarial, through.adversarial)
    audited = server.store.usage()
    assert audited == [{"key": "red-team", "model": "toy", "clips": int(through.queries[0]), "requests": audited[0]["requests"]}]
    assert sum(row["clips"] for row in server.store.audit("red-team") if row["status"] == 200) == int(through.queries[0])


def test_requests_without_a_valid_key_are_refused(serve, toy_data, monkeypatch) -> None:
    url, server = serve(keys=[ApiKey.from_secret("alice", KEY, budget=None)])
    monkeypatch.delenv("VIDATTACK_API_KEY", raising=False)
    monkeypatch.delenv("VIDATTACK_BEARER_TOKEN", raising=False)
    with pytest.raises(RemoteModelError) as missing:
        RemoteModel(url)
    assert missing.value.status == 401
    with pytest.raises(RemoteModelError) as wrong:
        RemoteModel(url, api_key="not-" + KEY)
    assert wrong.value.status == 403 and KEY not in str(wrong.value)
    request = urllib.request.Request(url + "/infer", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as raw:
        urllib.request.urlopen(request, timeout=5)
    assert raw.value.code == 401 and "API key" in json.loads(raw.value.read())["error"]
    # The key from the environment, as X-API-Key or as a bearer token; never shown.
    monkeypatch.setenv("VIDATTACK_API_KEY", KEY)
    remote = RemoteModel(url)
    assert remote(toy_data[0][:1]).shape == (1, 3) and KEY not in repr(remote)
    monkeypatch.delenv("VIDATTACK_API_KEY")
    assert RemoteModel(url, bearer_token=KEY)(toy_data[0][:1]).shape == (1, 3)


def test_a_key_past_its_budget_gets_429_and_the_model_does_not_run(serve, toy_model, toy_data) -> None:
    counting = Counting(toy_model)
    url, server = serve(keys=[ApiKey.from_secret("alice", KEY, budget=5)], model=counting)
    remote = RemoteModel(url, api_key=KEY, retries=0)
    remote(toy_data[0][:4])
    assert counting.clips == 4
    with pytest.raises(RemoteModelError) as refused:
        ScoreOracle(remote).query(toy_data[0][:2])
    assert refused.value.status == 429 and counting.clips == 4
    remote(toy_data[0][:1])  # exactly reaching the budget is allowed
    assert counting.clips == 5 and server.store.used("alice", "toy") == 5
    assert [row["status"] for row in server.store.audit("alice")] == [200, 429, 200]


def test_budgets_survive_a_restart_in_the_sqlite_file(toy_model, toy_data, tmp_path) -> None:
    served = ServedModel("toy", toy_model, frames=8, height=16, width=16)
    keys = [ApiKey.from_secret("alice", KEY, budget=3)]
    for expected in (200, 429):
        store = AuditStore(tmp_path / "audit.sqlite")
        with start_server(build_app([served], keys=keys, store=store)) as handle:
            remote = RemoteModel(handle.url + "/v2/models/toy", api_key=KEY, retries=0)
            try:
                remote(toy_data[0][:3])
                status = 200
            except RemoteModelError as error:
                status = error.status
        store.close()
        assert status == expected


def test_retries_answer_once_per_oracle_query(toy_model, toy_data) -> None:
    served = ServedModel("toy", toy_model, frames=8, height=16, width=16)
    inner = build_app([served])
    failures = {"left": 2}

    async def flaky(scope, receive, send):  # the first two inferences meet a busy gateway
        if scope["type"] == "http" and scope["path"].endswith("/infer") and failures["left"] > 0:
            failures["left"] -= 1
            await send({"type": "http.response.start", "status": 503, "headers": [(b"connection", b"close")]})
            await send({"type": "http.response.body", "body": b'{"error": "busy"}'})
            return
        await inner(scope, receive, send)

    with start_server(flaky) as handle:
        remote = RemoteModel(handle.url + "/v2/models/toy", retries=2, backoff=0.01)
        oracle = ScoreOracle(remote)
        oracle.query(toy_data[0][:2])
        assert oracle.queries == 2 and remote.requests_sent == 2 + 3  # ready + metadata, then 3 tries
        assert inner.state.server.store.used("anonymous", "toy") == 2
        failures["left"] = 1
        with pytest.raises(RemoteModelError) as gave_up:
            RemoteModel(handle.url + "/v2/models/toy", retries=0)(toy_data[0][:1])
        assert gave_up.value.status == 503


def test_white_box_methods_are_refused_for_remote_models(serve, toy_data) -> None:
    videos, labels = toy_data
    remote = RemoteModel(serve()[0])
    with pytest.raises(ValueError, match="white-box"):
        methods.run("pgd", remote, videos[:1], labels[:1])
    with pytest.raises(ValueError, match="no gradients"):
        remote(videos[:1].clone().requires_grad_(True))


def test_bad_urls_and_unreachable_services() -> None:
    with pytest.raises(RemoteModelError, match="cannot reach"):
        RemoteModel("http://127.0.0.1:9/v2/models/x", timeout=2, retries=0)
    with pytest.raises(ValueError, match="http"):
        RemoteModel("ftp://example/v2/models/x")
    with pytest.raises(ValueError, match="/v2/models/NAME"):
        RemoteModel("http://127.0.0.1:9")
    with pytest.raises(ValueError, match="retries"):
        RemoteModel("http://127.0.0.1:9/v2/models/x", retries=-1)


def test_serving_without_keys_is_refused_off_loopback(toy_model) -> None:
    app = build_app([ServedModel("toy", toy_model, frames=8, height=16, width=16)])
    with pytest.raises(ValueError, match="without API keys"):
        start_server(app, host="0.0.0.0")


def test_health_metadata_and_metrics(serve, toy_data) -> None:
    url, _ = serve(reveal="probabilities")
    base = url.split("/v2/")[0]
    for path in ("/v2/health/live", "/v2/health/ready"):
        with urllib.request.urlopen(base + path, timeout=5) as answer:
            assert answer.status == 200
    with urllib.request.urlopen(url, timeout=5) as answer:
        metadata = json.loads(answer.read())
    assert metadata["inputs"] == [{"name": "video", "datatype": "FP32", "shape": [-1, 8, 3, 16, 16]}]
    assert metadata["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}]
    RemoteModel(url)(toy_data[0][:3])
    with urllib.request.urlopen(base + "/metrics", timeout=5) as answer:
        text = answer.read().decode()
    assert 'vidattack_infer_clips_total{model="toy"} 3.0' in text


def test_a_client_closes_its_connection(serve, toy_data) -> None:
    import gc
    import warnings

    url = serve()[0]
    with RemoteModel(url) as remote:  # a context manager closes the kept-alive connection
        remote(toy_data[0][:1])
        assert remote._connection is not None
    assert remote._connection is None
    dropped = RemoteModel(url)
    dropped(toy_data[0][:1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        del dropped  # dropped without close(): no unclosed-socket warning from the collector
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning) and "socket" in str(w.message)]
