"""Towers, pooling, fusion and the two-tower model on random inputs."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
import torch
from torch import nn

from recsys.errors import ConfigError, ModelError
from recsys.models.embeddings import CategoricalEmbedding, IdEmbedding, MultiHotEmbedding
from recsys.models.fusion import ConcatMLPFusion, GatedFusion, ResidualMLPFusion
from recsys.models.history import AttentionHistory, MeanHistory, TransformerHistory
from recsys.models.inputs import FeatureSchema, ItemInputs, UserInputs
from recsys.models.pooling import AttentionPooling, MeanPooling
from recsys.models.towers import ItemTower, UserTower
from recsys.models.two_tower import TwoTowerModel

SCHEMA = FeatureSchema(n_users=10, n_items=12, user_cat_sizes=[3, 4], user_num=1,
                       item_cat_sizes=[5], item_multi_sizes=[6], item_multi_len=3, item_num=1,
                       image_dim=8, social_dim=8, history_len=5, social_len=3)


def _user_tower(fusion: type[nn.Module] = ConcatMLPFusion, dim: int = 16,
                social: bool = True, sparse_min_rows: int = 10**9, source: str = "separate",
                encoder: Callable[..., nn.Module] = AttentionHistory,
                residual: bool = False, normalize: bool = True) -> UserTower:
    return UserTower(SCHEMA, functools.partial(fusion, hidden=[16], dropout=0.0), dim=dim,
                     id_buckets=7, id_dim=4, id_dropout=0.0, cat_dim=3, use_demographics=True,
                     history_dim=6, history_encoder=encoder,
                     social_dim=5,
                     social_pooling=functools.partial(MeanPooling) if social else None,
                     sparse_min_rows=sparse_min_rows, history_source=source, item_dim=16,
                     history_residual=residual, normalize=normalize)


def _item_tower(dim: int = 16, use_image: bool = True, normalize: bool = True) -> ItemTower:
    return ItemTower(SCHEMA, functools.partial(GatedFusion, hidden=[8], dropout=0.0), dim=dim,
                     id_dim=4, id_dropout=0.0, cat_dim=3, use_attributes=True, image_dim=5,
                     use_image=use_image, sparse_min_rows=10**9, normalize=normalize)


def _users(b: int = 4, seed: int = 0) -> UserInputs:
    g = torch.Generator().manual_seed(seed)
    hist = torch.randint(0, SCHEMA.n_items + 1, (b, SCHEMA.history_len), generator=g)
    return UserInputs(torch.randint(0, 7, (b,), generator=g),
                      torch.stack([torch.randint(0, 3, (b,), generator=g),
                                   torch.randint(0, 4, (b,), generator=g)], 1),
                      torch.randn(b, 1, generator=g), hist,
                      torch.rand(b, SCHEMA.history_len, generator=g) * 3,
                      torch.randn(b, 3, 8, generator=g),
                      torch.rand(b, 3, generator=g) > 0.3)


def _items(b: int = 4, seed: int = 1) -> ItemInputs:
    g = torch.Generator().manual_seed(seed)
    return ItemInputs(torch.randint(0, 13, (b,), generator=g),
                      torch.randint(0, 5, (b, 1), generator=g),
                      torch.randint(0, 6, (b, 1, 3), generator=g), torch.randn(b, 1, generator=g),
                      torch.randn(b, 8, generator=g), torch.rand(b, generator=g) > 0.5)


def test_towers_output_unit_vectors_of_the_configured_size() -> None:
    user, item = _user_tower().eval(), _item_tower().eval()
    u, v = user(*_users()), item(*_items())
    assert u.shape == (4, 16) and v.shape == (4, 16)
    assert torch.allclose(u.norm(dim=-1), torch.ones(4), atol=1e-5)
    assert torch.allclose(v.norm(dim=-1), torch.ones(4), atol=1e-5)
    assert user.block_names == ["id", "demographics", "demographics_numeric", "behaviour",
                                "social_image"]


def test_padding_and_masked_images_do_not_change_the_user_vector() -> None:
    tower = _user_tower().eval()
    users = _users(b=2)
    hist = users.hist_items.clone()
    hist[:, 3:] = 0  # padding
    base = users._replace(hist_items=hist)
    noisy_pad = base._replace(hist_age=base.hist_age + (hist == 0) * 50.0,
                              social=base.social + (~base.social_mask).unsqueeze(-1) * 9.0)
    assert torch.allclose(tower(*base), tower(*noisy_pad), atol=1e-6)
    changed = base._replace(social=base.social + base.social_mask.unsqueeze(-1) * 9.0)
    if base.social_mask.any():
        assert not torch.allclose(tower(*base), tower(*changed), atol=1e-4)


def test_attention_pooling_uses_recency_and_ignores_empty_sets() -> None:
    pool = AttentionPooling(dim=4, recency=True)
    with torch.no_grad():
        pool.age_weight.fill_(1.0)
    x = torch.randn(2, 3, 4)
    mask = torch.tensor([[True, True, True], [False, False, False]])
    young, old = torch.zeros(2, 3), torch.tensor([[0.0, 5.0, 0.0], [0.0, 0.0, 0.0]])
    out = pool(x, mask, young)
    assert torch.equal(out[1], torch.zeros(4))
    assert not torch.allclose(out[0], pool(x, mask, old)[0])
    assert torch.allclose(MeanPooling(4)(x, mask, young)[0], x[0].mean(0))


def test_cold_dropout_replaces_ids_with_the_cold_row_only_in_training() -> None:
    emb = IdEmbedding(num_rows=5, dim=3, dropout=1.0, sparse=False)
    ids = torch.tensor([1, 2, 4])
    cold = emb.table.weight[0].expand(3, 3)
    assert torch.equal(emb.train()(ids), cold)
    assert torch.equal(emb.eval()(ids), emb.table.weight[ids])


def test_categorical_fields_use_separate_rows_and_multi_hot_averages_values() -> None:
    cat = CategoricalEmbedding([3, 4], dim=2)
    out = cat(torch.tensor([[0, 0]]))
    assert not torch.allclose(out[0, :2], out[0, 2:])  # index 0 of each field is its own row
    multi = MultiHotEmbedding([6], dim=2)
    w = multi.table.weight
    got = multi(torch.tensor([[[2, 5, 0]]]))
    assert torch.allclose(got[0], (w[2] + w[5]) / 2)


def test_gated_and_concat_fusion_are_interchangeable() -> None:
    for fusion in (ConcatMLPFusion, GatedFusion):
        tower = _user_tower(fusion=fusion).eval()
        assert tower(*_users()).shape == (4, 16)


def test_residual_mlp_fusion_starts_as_its_linear_map_and_needs_a_hidden_layer() -> None:
    fusion = ResidualMLPFusion([4, 3], 5, hidden=[8], dropout=0.0)
    blocks = [torch.randn(6, 4), torch.randn(6, 3)]
    assert torch.equal(fusion(blocks), fusion.linear(torch.cat(blocks, dim=-1)))
    loss = fusion(blocks).pow(2).sum()
    loss.backward()
    assert fusion.mlp[-1].weight.grad is not None and fusion.mlp[-1].weight.grad.abs().sum() > 0
    tower = _user_tower(fusion=ResidualMLPFusion).eval()
    users = _users()
    assert torch.allclose(torch.jit.script(tower)(*users), tower(*users), atol=1e-6)
    with pytest.raises(ValueError, match="at least one hidden layer"):
        ResidualMLPFusion([4], 5, hidden=[], dropout=0.0)


def test_user_tower_scripts_and_matches_eager() -> None:
    tower = _user_tower().eval()
    scripted = torch.jit.script(tower)
    users = _users()
    assert torch.allclose(scripted(*users), tower(*users), atol=1e-6)


def test_large_tables_get_sparse_gradients() -> None:
    tower = _user_tower(sparse_min_rows=7)  # id table has 7 rows, history 13
    assert tower.ids.table.sparse and tower.hist_emb is not None and tower.hist_emb.sparse
    tower.train()(*_users()).sum().backward()
    assert tower.ids.table.weight.grad is not None and tower.ids.table.weight.grad.is_sparse


def test_model_scores_and_learnable_temperature() -> None:
    model = TwoTowerModel(SCHEMA, lambda schema, item_dim: _user_tower(),
                          lambda schema: _item_tower(),
                          temperature=0.1, learn_temperature=True)
    scores = model.eval()(_users(), _items())
    assert scores.shape == (4,) and scores.abs().max() <= 1 / 0.1 + 1e-4
    assert isinstance(model.log_inv_temperature, nn.Parameter)
    fixed = TwoTowerModel(SCHEMA, lambda schema, item_dim: _user_tower(), lambda schema: _item_tower(),
                          temperature=0.1, learn_temperature=False)
    assert "log_inv_temperature" not in dict(fixed.named_parameters())
    assert fixed.temperature.item() == pytest.approx(0.1)


def test_unnormalised_towers_score_plain_dot_products_and_must_agree() -> None:
    model = TwoTowerModel(SCHEMA, lambda schema, item_dim: _user_tower(normalize=False),
                          lambda schema: _item_tower(normalize=False),
                          temperature=1.0, learn_temperature=False).eval()
    users, items = _users(), _items()
    u, v = model.user(users), model.item(items)
    assert not torch.allclose(u.norm(dim=-1), torch.ones(4))  # plain fused vectors
    assert not torch.allclose(v.norm(dim=-1), torch.ones(4))
    assert torch.allclose(model(users, items), (u * v).sum(-1), atol=1e-6)
    assert model.similarity == "dot" and not model.normalize
    assert torch.allclose(torch.jit.script(model.user_tower)(*users), u, atol=1e-6)
    cosine = TwoTowerModel(SCHEMA, lambda schema, item_dim: _user_tower(),
                           lambda schema: _item_tower(), temperature=0.1, learn_temperature=False)
    assert cosine.similarity == "cosine"
    with pytest.raises(ModelError, match="normalize must agree"):
        TwoTowerModel(SCHEMA, lambda schema, item_dim: _user_tower(normalize=False),
                      lambda schema: _item_tower(), temperature=1.0, learn_temperature=False)


def test_mean_history_count_power_scales_the_sum() -> None:
    x = torch.randn(2, 4, 3)
    mask = torch.tensor([[True, True, True, False], [True, False, False, False]])
    total = (x * mask.unsqueeze(-1)).sum(1)
    count = mask.sum(1, keepdim=True).float()
    age = torch.zeros(2, 4)
    for power in (1.0, 0.5, 0.0):
        got = MeanHistory(dim=3, max_len=4, count_power=power)(x, mask, age)
        assert torch.allclose(got, total / count**power, atol=1e-6)
    with pytest.raises(ConfigError, match="count_power must lie in"):
        MeanHistory(dim=3, max_len=4, count_power=1.5)


def test_mismatched_tower_dimensions_are_refused() -> None:
    with pytest.raises(ModelError, match=r"incompatible dimensions.*32.*16"):
        TwoTowerModel(SCHEMA, lambda schema, item_dim: _user_tower(dim=32), lambda schema: _item_tower(),
                      temperature=0.1, learn_temperature=True)


def test_image_encoder_of_another_width_is_refused() -> None:
    encoder = nn.Linear(2, 2)
    encoder.out_dim = 99  # type: ignore[assignment]
    with pytest.raises(ModelError, match="99-d"):
        TwoTowerModel(SCHEMA, lambda schema, item_dim: _user_tower(), lambda schema: _item_tower(),
                      temperature=0.1, learn_temperature=True, image_encoder=encoder)


def _model(source: str = "shared", encoder: Callable[..., nn.Module] = AttentionHistory,
           residual: bool = False) -> TwoTowerModel:
    return TwoTowerModel(SCHEMA, lambda schema, item_dim: _user_tower(source=source,
                                                                      encoder=encoder,
                                                                      residual=residual),
                         lambda schema: _item_tower(), temperature=0.1, learn_temperature=False)


def _history_vectors(model: TwoTowerModel, users: UserInputs) -> torch.Tensor:
    """Every item's history representation, looked up per history slot (row 0 = padding)."""
    items = _items(SCHEMA.n_items)._replace(ids=torch.arange(1, SCHEMA.n_items + 1))
    return model.history_items(items)[(users.hist_items - 1).clamp(min=0)]


@pytest.mark.parametrize("encoder", [
    functools.partial(MeanHistory), functools.partial(AttentionHistory),
    functools.partial(TransformerHistory, layers=2, heads=2, dropout=0.0, position="learned"),
    functools.partial(TransformerHistory, heads=4, dropout=0.0, position="time_gap")])
def test_shared_history_reads_the_item_towers_space_and_exports(encoder: Callable[..., nn.Module]
                                                                ) -> None:
    model = _model(encoder=encoder).eval()
    assert model.shared_history and model.user_tower.hist_emb is None
    users = _users()
    hist = _history_vectors(model, users)
    u = model.user(users, hist)
    # gradients of the user vector reach the item tower's id table through the history
    model.train()
    model.user(users, _history_vectors(model, users)).sum().backward()
    grad = model.item_tower.ids.table.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    model.eval()
    table = model.history_items(_items(SCHEMA.n_items)._replace(
        ids=torch.arange(1, SCHEMA.n_items + 1)))
    exported = torch.jit.script(model.user_tower_with_table(table))
    assert torch.allclose(exported(*users), u, atol=1e-5)


def test_history_residual_adds_the_pooled_history_and_exports() -> None:
    model = _model(encoder=functools.partial(MeanHistory), residual=True).eval()
    users = _users()
    hist = _history_vectors(model, users)
    tower = model.user_tower
    assert tower.residual_weight is not None
    u = model.user(users, hist)
    with torch.no_grad():
        tower.residual_weight.fill_(1000.0)  # the pooled history dominates the user vector
    mask = (users.hist_items > 0).unsqueeze(-1).float()
    pooled = (hist * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    has_history = mask.sum((1, 2)) > 0
    expected = torch.nn.functional.normalize(pooled, dim=-1)
    assert torch.allclose(model.user(users, hist)[has_history], expected[has_history], atol=1e-2)
    with torch.no_grad():
        tower.residual_weight.fill_(1.0)
    table = model.history_items(_items(SCHEMA.n_items)._replace(
        ids=torch.arange(1, SCHEMA.n_items + 1)))
    exported = torch.jit.script(model.user_tower_with_table(table))
    assert torch.allclose(exported(*users), u, atol=1e-5)
    with pytest.raises(ValueError, match="history_residual needs history_source=shared"):
        _user_tower(source="separate", residual=True)


def test_history_encoders_ignore_padding() -> None:
    x = torch.randn(2, 4, 8)
    mask = torch.tensor([[True, True, False, False], [False, False, False, False]])
    age = torch.rand(2, 4)
    noisy = x + (~mask).unsqueeze(-1) * 7.0
    for enc in (MeanHistory(8, 4), AttentionHistory(8, 4),
                TransformerHistory(8, 4, dropout=0.0), TransformerHistory(8, 4, dropout=0.0,
                                                                          position="time_gap")):
        enc.eval()
        out = enc(x, mask, age)
        assert torch.allclose(out, enc(noisy, mask, age), atol=1e-5)
        assert torch.equal(out[1], torch.zeros(8))  # no history: a zero block


def test_causal_transformer_reads_older_items_only_from_the_latest_position() -> None:
    enc = TransformerHistory(8, 4, layers=2, dropout=0.0).eval()
    x, mask, age = torch.randn(1, 4, 8), torch.ones(1, 4, dtype=torch.bool), torch.zeros(1, 4)
    base = enc(x, mask, age)
    older = x.clone()
    older[0, 3] = torch.randn(8)  # the oldest item changes the output
    assert not torch.allclose(base, enc(older, mask, age), atol=1e-5)
    assert not TransformerHistory(8, 4, position="none").ordered and enc.ordered


def test_history_features_select_item_blocks_and_a_missing_one_is_refused() -> None:
    ids_only = functools.partial(MeanHistory, item_features=["id"])
    model = _model(encoder=ids_only).eval()
    items = _items()
    changed = items._replace(image=items.image + 5.0, image_mask=torch.ones(4, dtype=torch.bool))
    assert torch.allclose(model.history_items(items), model.history_items(changed))
    assert not torch.allclose(model.item(items), model.item(changed))
    with pytest.raises(ModelError, match="item_features names 'product_image'"):
        TwoTowerModel(SCHEMA, lambda schema, item_dim: _user_tower(
            source="shared", encoder=functools.partial(MeanHistory,
                                                       item_features=["id", "product_image"])),
            lambda schema: _item_tower(use_image=False), temperature=0.1,
            learn_temperature=False)


def test_zero_or_negative_temperature_is_refused() -> None:
    for temperature in (0.0, -0.1):
        with pytest.raises(ModelError, match=r"model\.net\.temperature"):
            TwoTowerModel(SCHEMA, lambda schema, item_dim: _user_tower(),
                          lambda schema: _item_tower(), temperature=temperature,
                          learn_temperature=True)
