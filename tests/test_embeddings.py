"""Timestep and label embeddings: hand-computed values, shapes, the null token, and errors that teach."""

import math

import pytest
import torch

from vdiff_edu.embeddings import LabelEmbedding, TimestepEmbedding, check_labels, timestep_embedding


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


def test_timestep_embedding_hand_computed():
    # dim 4: frequencies 10000^(-0/2) = 1 and 10000^(-1/2) = 0.01
    emb = timestep_embedding(torch.tensor([0, 2]), 4)
    expected = torch.tensor([[1.0, 1.0, 0.0, 0.0], [math.cos(2), math.cos(0.02), math.sin(2), math.sin(0.02)]])
    torch.testing.assert_close(emb, expected)


def test_timestep_embedding_float_and_long_agree_and_fractions_interpolate():
    t_long = torch.tensor([0, 10, 999])
    torch.testing.assert_close(timestep_embedding(t_long, 32), timestep_embedding(t_long.float(), 32))
    e = timestep_embedding(torch.tensor([10.0, 10.5, 11.0]), 32)
    assert e.shape == (3, 32)
    # a half step lies between its neighbours: closer to both than they are to each other
    assert (e[1] - e[0]).norm() < (e[2] - e[0]).norm() and (e[1] - e[2]).norm() < (e[2] - e[0]).norm()


def test_timestep_embedding_errors():
    with pytest.raises(ValueError, match="even dim"):
        timestep_embedding(torch.tensor([1]), 5)
    with pytest.raises(ValueError, match=r"shape \(b,\)"):
        timestep_embedding(torch.tensor([[1]]), 4)


def test_timestep_mlp_shape():
    assert TimestepEmbedding(16, 64)(torch.tensor([1, 2, 3])).shape == (3, 64)


def test_label_embedding_is_a_sum_of_per_slot_rows():
    emb = LabelEmbedding(num_classes=10, num_slots=2, dim=8)
    labels = torch.tensor([[3, 7], [7, 3], [10, 10]])
    out = emb(labels)
    assert out.shape == (3, 8)
    table = emb.table.weight  # rows: slot 0 -> 0..10, slot 1 -> 11..21
    torch.testing.assert_close(out[0], table[3] + table[11 + 7])
    torch.testing.assert_close(out[2], table[10] + table[21])  # both null tokens
    assert not torch.allclose(out[0], out[1])  # "3 then 7" differs from "7 then 3"


def test_null_labels():
    emb = LabelEmbedding(10, 2, 8)
    null = emb.null_labels(4)
    assert null.shape == (4, 2) and null.dtype == torch.long and (null == 10).all()
    assert emb.null_index == 10


def test_label_embedding_errors():
    emb = LabelEmbedding(10, 1, 8)
    with pytest.raises(ValueError, match=r"\[0, 10\]"):
        emb(torch.tensor([[11]]))
    with pytest.raises(ValueError, match=r"\[0, 10\]"):
        emb(torch.tensor([[-1]]))
    with pytest.raises(ValueError, match="labels\\[:, None\\]"):
        emb(torch.tensor([3, 4]))
    with pytest.raises(TypeError, match="long"):
        emb(torch.tensor([[3.0]]))
    with pytest.raises(ValueError, match="num_slots >= 1"):
        LabelEmbedding(10, 0, 8)


def test_check_labels_is_the_one_label_check_of_embedding_and_unet():
    good = torch.tensor([[3], [10]])  # a digit, and the null token
    check_labels(good, num_classes=10, num_slots=1, batch_size=2)
    with pytest.raises(ValueError, match=r"cond\['labels'\] must have shape \(b, num_label_slots\) = \(3, 1\)"):
        check_labels(good, 10, 1, batch_size=3, where="cond['labels']")  # the batch size is checked too
    with pytest.raises(ValueError, match=r"= \(b, 2\), got list"):
        check_labels([[3, 7]], 10, 2)
    with pytest.raises(ValueError, match=r"must lie in \[0, 10\].*got values from 3 to 11"):
        check_labels(torch.tensor([[3], [11]]), 10, 1)
