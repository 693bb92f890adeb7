"""The image kernel: a fixed image-similarity channel appended to both towers' vectors."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from recsys.errors import ModelError
from recsys.models.fusion import ConcatMLPFusion, GatedFusion
from recsys.models.history import AttentionHistory, TransformerHistory
from recsys.models.image_kernel import ImageKernel, recent_profile
from recsys.models.inputs import FeatureSchema, ItemInputs, UserInputs
from recsys.models.towers import ItemTower, UserTower
from recsys.models.two_tower import TwoTowerModel

SCHEMA = FeatureSchema(n_users=10, n_items=12, user_cat_sizes=[3], user_num=1,
                       item_cat_sizes=[5], item_multi_sizes=[], item_multi_len=0, item_num=1,
                       image_dim=8, social_dim=0, history_len=5, social_len=0)
K = 6


def _model(kernel: int = K, source: str = "shared", recent: int = 2, weight: float = 0.7,
           schema: FeatureSchema = SCHEMA, encoder: object = AttentionHistory,
           learn: bool = True) -> TwoTowerModel:
    torch.manual_seed(0)

    def user(schema: FeatureSchema, item_dim: int, kernel_dim: int = 0) -> UserTower:
        return UserTower(schema, functools.partial(ConcatMLPFusion, hidden=[8], dropout=0.0),
                         dim=16, id_buckets=7, id_dim=4, id_dropout=0.0, cat_dim=3,
                         use_demographics=True, history_dim=6, history_encoder=encoder,
                         social_dim=0, social_pooling=None, sparse_min_rows=10**9,
                         history_source=source, item_dim=item_dim, kernel_dim=kernel_dim,
                         image_kernel_recent=recent, image_kernel_weight=weight,
                         image_kernel_learn_weight=learn)

    def item(schema: FeatureSchema) -> ItemTower:
        return ItemTower(schema, functools.partial(GatedFusion, hidden=[8], dropout=0.0), dim=16,
                         id_dim=4, id_dropout=0.0, cat_dim=3, use_attributes=True, image_dim=5,
                         use_image=False, sparse_min_rows=10**9, image_kernel_dim=kernel)

    return TwoTowerModel(schema, user, item, temperature=0.1, learn_temperature=False).eval()


def _items(n: int = SCHEMA.n_items, seed: int = 1) -> ItemInputs:
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, generator=g) > 0.25
    return ItemInputs(torch.arange(1, n + 1), torch.randint(0, 5, (n, 1), generator=g),
                      torch.zeros(n, 0, dtype=torch.long), torch.randn(n, 1, generator=g),
                      torch.randn(n, 8, generator=g) * mask.unsqueeze(1), mask)


def _users(b: int = 4, seed: int = 0) -> UserInputs:
    g = torch.Generator().manual_seed(seed)
    hist = torch.randint(1, SCHEMA.n_items + 1, (b, SCHEMA.history_len), generator=g)
    hist[0] = 0  # a user without history
    hist[1, 3:] = 0
    return UserInputs(torch.randint(0, 7, (b,), generator=g),
                      torch.randint(0, 3, (b, 1), generator=g), torch.randn(b, 1, generator=g),
                      hist, torch.rand(b, SCHEMA.history_len, generator=g),
                      torch.zeros(b, 0, 0), torch.zeros(b, 0, dtype=torch.bool))


def test_kernel_vectors_are_unit_seeded_and_keep_image_cosines_roughly() -> None:
    kernel = ImageKernel(image_dim=256, dim=128, seed=3)
    g = torch.Generator().manual_seed(0)
    image = torch.randn(6, 256, generator=g)
    image[1] = image[0] + 0.3 * image[1]  # one pair of similar images
    mask = torch.tensor([True, True, True, True, False, False])
    out = kernel(image, mask)
    assert out.shape == (6, 128)
    assert torch.allclose(out.norm(dim=-1), torch.ones(6), atol=1e-5)
    assert torch.equal(out[4], out[5])  # one shared vector for items without an image
    assert torch.equal(ImageKernel(256, 128, seed=3).projection, kernel.projection)
    assert not torch.equal(ImageKernel(256, 128, seed=4).projection, kernel.projection)
    # a random projection keeps the cosines of the standardised features within a few tenths
    std = F.normalize(F.layer_norm(image[:4], (256,)), dim=-1)
    assert torch.allclose(out[:4] @ out[:4].T, std @ std.T, atol=0.25)


def test_recent_profile_reads_the_latest_valid_positions_only() -> None:
    vectors = torch.eye(4).unsqueeze(0).repeat(2, 1, 1)
    mask = torch.tensor([[True, True, True, True], [False, False, False, False]])
    prof = recent_profile(vectors, mask, recent=2)
    assert torch.allclose(prof[0], F.normalize(torch.tensor([1.0, 1.0, 0.0, 0.0]), dim=0))
    assert torch.equal(prof[1], torch.zeros(4))


def test_score_is_the_learned_dot_plus_weight_times_image_similarity_and_exports() -> None:
    model = _model()
    items, users = _items(), _users()
    table = model.history_items(items)
    assert table.shape == (SCHEMA.n_items, 16 + K)
    hist = table[(users.hist_items - 1).clamp(min=0)]
    u, v = model.user(users, hist), model.item(items)
    assert u.shape == (4, 16 + K) and v.shape == (SCHEMA.n_items, 16 + K)
    assert torch.allclose(v.norm(dim=-1), torch.full((SCHEMA.n_items,), 2**0.5), atol=1e-5)
    # the kernel part of the score: weight x (unit mean of the 2 latest history images . image)
    kern = model.item_tower.kernel
    assert kern is not None
    image = kern(items.image, items.image_mask)
    latest = users.hist_items[2, :2] - 1
    profile = F.normalize(image[latest].sum(0), dim=0)
    assert torch.allclose(u[2, 16:], 0.7 * profile, atol=1e-5)
    assert torch.allclose(u[0, 16:], torch.zeros(K))  # no history: no image term
    learned = u[:, :16] @ v[:, :16].T
    assert torch.allclose(u @ v.T, learned + u[:, 16:] @ image.T, atol=1e-5)
    # the exported user tower (frozen history table, TorchScript) gives the same vectors
    exported = torch.jit.script(model.user_tower_with_table(table))
    assert torch.allclose(exported(*users), u, atol=1e-5)
    # the weight is learned
    model.train()
    (model.user(users, hist) @ model.item(items).T).sum().backward()
    weight = model.user_tower.kernel_weight
    assert weight is not None and weight.grad is not None and weight.grad.abs() > 0


def test_a_large_kernel_weight_ranks_by_image_similarity() -> None:
    model = _model(weight=1e4)
    items, users = _items(), _users()
    table = model.history_items(items)
    u = model.user(users, table[(users.hist_items - 1).clamp(min=0)])
    kern = model.item_tower.kernel
    assert kern is not None
    similarity = u[2, 16:] @ kern(items.image, items.image_mask).T
    scores = u[2] @ model.item(items).T
    # the best-scored item is one of the most similar (items without an image tie)
    assert torch.isclose(similarity[scores.argmax()], similarity.max())


def test_bad_kernel_settings_are_refused() -> None:
    with pytest.raises(ModelError, match="history_source=shared"):
        _model(source="separate")
    with pytest.raises(ModelError, match="image_kernel_recent"):
        _model(recent=0)
    no_images = FeatureSchema(n_users=10, n_items=12, user_cat_sizes=[3], user_num=1,
                              item_cat_sizes=[5], item_multi_sizes=[], item_multi_len=0,
                              item_num=1, image_dim=0, social_dim=0, history_len=5, social_len=0)
    with pytest.raises(ModelError, match="needs image features"):
        _model(schema=no_images)
    causal = _model(encoder=functools.partial(TransformerHistory, heads=2, dropout=0.0,
                                              position="learned"))
    users = _users()
    with pytest.raises(ValueError, match="image kernel"):
        causal.user_sequence(users, None, torch.zeros(1, dtype=torch.long),
                             torch.zeros(1, dtype=torch.long))


def test_without_the_kernel_the_towers_are_unchanged() -> None:
    model = _model(kernel=0)
    assert model.item_tower.kernel is None and model.user_tower.kernel_weight is None
    assert model.dim == 16


def test_a_fixed_kernel_weight_is_saved_and_not_trained() -> None:
    model = _model(weight=2.5, learn=False)
    weight = model.user_tower.kernel_weight
    assert weight is not None and not weight.requires_grad and float(weight) == 2.5
    assert "user_tower.kernel_weight" in model.state_dict()
    assert all("kernel_weight" not in name for name, _ in model.named_parameters())
    items, users = _items(), _users()
    table = model.history_items(items)
    exported = torch.jit.script(model.user_tower_with_table(table))
    assert torch.allclose(exported(*users),
                          model.user(users, table[(users.hist_items - 1).clamp(min=0)]),
                          atol=1e-5)
