import pytest
import torch

from vidattack.video import (
    as_batch,
    cthw_to_tchw,
    ncthw_to_ntchw,
    ntchw_to_ncthw,
    numpy_views,
    tchw_to_cthw,
    to_float,
    to_uint8,
    validate_label,
    validate_video,
)


def test_valid_video_is_returned_unchanged():
    video = torch.rand(2, 4, 3, 8, 8)
    assert validate_video(video) is video


@pytest.mark.parametrize(
    ("video", "needle"),
    [
        (torch.rand(4, 3, 8, 8), "rank 5"),
        (torch.rand(1, 4, 2, 8, 8), "channels"),
        ((torch.rand(1, 4, 3, 8, 8) * 255).to(torch.uint8), "floating-point"),
        (torch.full((1, 4, 3, 8, 8), 1.5), "[0, 1]"),
        (torch.full((1, 4, 3, 8, 8), -0.1), "[0, 1]"),
        (torch.full((1, 4, 3, 8, 8), float("nan")), "finite"),
        (torch.full((1, 4, 3, 8, 8), float("inf")), "finite"),
        (torch.rand(1, 0, 3, 8, 8), "non-empty T"),
        (torch.rand(1, 4, 3, 0, 8), "non-empty H"),
        (torch.rand(1, 4, 3, 8, 0), "non-empty W"),
        ([[0.5]], "torch.Tensor"),
    ],
)
def test_bad_videos_raise_value_error_naming_the_argument(video, needle):
    with pytest.raises(ValueError, match="my_arg") as info:
        validate_video(video, "my_arg")
    assert needle in str(info.value)


def test_unbatched_layout_and_as_batch():
    frames = torch.rand(4, 3, 8, 8)
    assert validate_video(frames, batched=False) is frames
    assert as_batch(frames).shape == (1, 4, 3, 8, 8)


def test_uint8_round_trip_is_exact():
    frames = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 1, 16, 16).expand(1, 2, 3, 16, 16)
    assert torch.equal(to_uint8(to_float(frames)), frames)
    with pytest.raises(ValueError, match="uint8"):
        to_float(torch.rand(2, 2))


def test_layout_permutations_are_inverse():
    video = torch.rand(2, 4, 3, 5, 6)
    assert ntchw_to_ncthw(video).shape == (2, 3, 4, 5, 6)
    assert torch.equal(ncthw_to_ntchw(ntchw_to_ncthw(video)), video)
    assert torch.equal(cthw_to_tchw(tchw_to_cthw(video[0])), video[0])


def test_validate_label():
    assert validate_label(2, 3).tolist() == [2, 2, 2]
    assert validate_label([0, 1], 2, 5).tolist() == [0, 1]
    with pytest.raises(ValueError, match="< 5"):
        validate_label([0, 7], 2, 5)
    with pytest.raises(ValueError, match="one entry per video"):
        validate_label([0, 1, 2], 2)
    with pytest.raises(ValueError, match=">= 0"):
        validate_label(-1, 1)
    with pytest.raises(ValueError, match="integer"):
        validate_label(torch.tensor([0.5]), 1)


def test_numpy_views_share_memory_and_refuse_dtypes_numpy_lacks() -> None:
    a, b = torch.zeros(2, 3), torch.zeros(4, dtype=torch.float64)
    views = numpy_views(a, b)
    assert views is not None
    views[0][1, 2] = 0.5  # a write through the view is a write into the tensor
    assert float(a[1, 2]) == 0.5
    assert numpy_views(a, torch.zeros(2, dtype=torch.bfloat16)) is None
    assert numpy_views(torch.zeros(2, dtype=torch.long)) is None
