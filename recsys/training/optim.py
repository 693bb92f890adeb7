"""Optimizers: AdamW for dense weights plus SparseAdam for sparse-gradient embedding tables,
stepped as one optimizer so that Lightning's automatic optimization drives both."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.optim import AdamW, Optimizer, SparseAdam
from torch.optim.lr_scheduler import LambdaLR

from recsys.errors import ConfigError


class DenseSparseAdam(Optimizer):
    """AdamW over ``dense`` and SparseAdam over ``sparse`` parameters; ``param_groups`` are the
    two optimizers' groups (shared objects), so LR schedulers and monitors see both."""

    def __init__(self, dense: list[dict[str, Any]], sparse: list[nn.Parameter], lr: float,
                 betas: tuple[float, float]) -> None:
        self.dense = AdamW(dense, lr=lr, betas=betas)
        self.sparse = SparseAdam(sparse, lr=lr, betas=betas)
        params = [p for group in dense for p in group["params"]] + sparse
        super().__init__(params, {"lr": lr})
        self.param_groups = self.dense.param_groups + self.sparse.param_groups

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.dense.step()
        self.sparse.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.dense.zero_grad(set_to_none)
        self.sparse.zero_grad(set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"dense": self.dense.state_dict(), "sparse": self.sparse.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.dense.load_state_dict(state_dict["dense"])
        self.sparse.load_state_dict(state_dict["sparse"])


def decay_groups(params: list[nn.Parameter], module: nn.Module, weight_decay: float,
                 embedding_weight_decay: float = 0.0) -> list[dict[str, Any]]:
    """``params`` in up to three groups: weight matrices of dense layers (decayed by
    ``weight_decay``), embedding tables (decayed by ``embedding_weight_decay``; sparse tables are
    not in ``params``, SparseAdam has no decay) and the rest (biases, norms, temperature: never
    decayed)."""
    embeddings = {id(m.weight) for m in module.modules() if isinstance(m, nn.Embedding)}
    decay = [p for p in params if p.ndim >= 2 and id(p) not in embeddings]
    # without embedding decay the tables stay in ``rest`` in module order, as the two groups were
    # before that key existed (so optimizer states saved then still load)
    tables = [p for p in params if id(p) in embeddings] if embedding_weight_decay else []
    keep = {id(p) for p in decay + tables}
    rest = [p for p in params if id(p) not in keep]
    return [group for group in ({"params": decay, "weight_decay": weight_decay},
                                {"params": tables, "weight_decay": embedding_weight_decay},
                                {"params": rest, "weight_decay": 0.0}) if group["params"]]


def split_sparse(module: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Trainable parameters split into (dense, sparse-gradient embedding weights)."""
    sparse_ids = {id(m.weight) for m in module.modules()
                  if isinstance(m, nn.Embedding) and m.sparse and m.weight.requires_grad}
    params = [p for p in module.parameters() if p.requires_grad]
    return ([p for p in params if id(p) not in sparse_ids],
            [p for p in params if id(p) in sparse_ids])


def build_optimizer(module: nn.Module, lr: float, weight_decay: float,
                    betas: tuple[float, float] = (0.9, 0.999),
                    embedding_weight_decay: float = 0.0) -> Optimizer:
    """AdamW, or :class:`DenseSparseAdam` when the module has sparse embedding tables; weight
    decay applies to dense weight matrices, ``embedding_weight_decay`` to dense embedding
    tables (:func:`decay_groups`)."""
    if weight_decay < 0 or embedding_weight_decay < 0:
        raise ConfigError("model.optimizer.weight_decay and embedding_weight_decay must be >= 0, "
                          f"got {weight_decay} and {embedding_weight_decay}",
                          column="model.optimizer")
    dense, sparse = split_sparse(module)
    betas = (float(betas[0]), float(betas[1]))
    groups = decay_groups(dense, module, weight_decay, float(embedding_weight_decay))
    if sparse:
        return DenseSparseAdam(groups, sparse, lr, betas)
    return AdamW(groups, lr=lr, betas=betas)


def warmup_cosine(optimizer: Optimizer, total_steps: int, warmup_fraction: float,
                  min_factor: float) -> LambdaLR:
    """Linear warm-up over ``warmup_fraction`` of the steps, then cosine decay to ``min_factor``."""
    warmup = max(1, int(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
