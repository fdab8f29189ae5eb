"""One attack's record: the 8-bit and H.264 re-checks count only attacks that succeeded."""

from __future__ import annotations

import torch

from vidattack.methods import TensorAttackerData
from vidattack.methods.record import attack_video


def test_a_failed_attack_never_counts_as_a_success_after_rounding_or_compression(toy_model, toy_data) -> None:
    videos, labels = toy_data
    attacker = TensorAttackerData(videos, labels)
    # Opt-attack with an unreachable MAP target: it finds adversarial videos, yet fails by its own rule.
    result, record = attack_video("opt", toy_model, videos[:1], int(labels[0]), budget=300, seed=0,
                                  params={"map_target": 1e-6}, attacker_data=attacker)  # fmt: skip
    assert result is not None and record["status"] == "failure"
    assert record["adv_label"] != int(labels[0])  # adversarial, above the MAP target
    assert record["success_uint8"] is False and record["success_h264"] is False
    assert record["distortion_trace"] and record["distortion_trace"][-1][2] > 1e-6


def test_a_successful_attack_is_rechecked_on_its_8bit_video(toy_model, toy_data) -> None:
    videos, labels = toy_data
    result, record = attack_video("pgd", toy_model, videos[:1], int(labels[0]), eps=0.3, seed=0)
    assert result is not None and record["success"] is True
    stored = torch.round(result.adversarial * 255) / 255
    with torch.no_grad():
        still = int(toy_model(stored).argmax(1)[0]) != int(labels[0])
    assert record["success_uint8"] is still


def test_the_record_names_the_bound_in_force(toy_model, toy_data) -> None:
    videos, labels = toy_data
    _, default = attack_video("pgd", toy_model, videos[:1], int(labels[0]), seed=0)
    _, given = attack_video("pgd", toy_model, videos[:1], int(labels[0]), eps=0.02, seed=0)
    assert default["eps"] == 0.05 and given["eps"] == 0.02  # pgd's default bound is recorded, not None
    assert given["linf"] <= 0.02 + 1e-6
