"""Fold packing: several folds of one protocol trained together as one batched model.

The models here are small: on a GPU one fold's training step leaves most of the device idle and is
bound by per-op launch overhead, not arithmetic. :func:`run_folds_packed` trains K folds' models as
one: their weights are stacked along a new leading axis (``torch.func.stack_module_state``) and every
training step runs the model once through ``torch.func.vmap`` over ``functional_call``, so each op
is launched once for K folds.

Each member keeps everything a fold owns, exactly as :func:`moodops.pipelines.evaluate.run_fold`
trains it alone:

- its own model initialisation (the fold's seed), normalisation, training rows, shuffling
  generator and batches (a step stacks the members whose batch at that position has the same size;
  a member with fewer batches simply sits out the rest of the epoch);
- its own optimizer state: Adam(W) is applied per member (:class:`_StackedAdam`, the update of
  ``torch.optim.AdamW`` / ``Adam`` written for stacked weights, with a step count per member), so a
  member that sits out a step is not touched by it;
- its own validation, early stopping and restored best epoch (:func:`moodops.pipelines.train.fit`'s
  rule, through the same :class:`_Selection`); a member that stops no longer changes;
- its own test predictions, electrode-attention maps, weights and :class:`FoldResult`.

Without randomness in the forward pass (dropout 0, no random masking) a packed member's predictions
equal those of the fold trained alone, up to float rounding (``tests/pipelines/test_packed.py``).
With dropout or MV-SSTMA's channel masking, each member draws its own masks
(``vmap(randomness="different")``) from another stream than a lone fold would: the same
distribution, not the same draws.

Not packed (each fold then runs alone, as before): scikit-learn models, and ``val_strategy="inner"``
(whose inner folds already train one after another).
"""
from __future__ import annotations

import copy
import logging
import warnings
from collections import defaultdict

import numpy as np

from moodops.components.models import MODELS
from moodops.components.types import FeatureSet, Fold, FoldResult
from moodops.pipelines.evaluate import (Prepared, attention_epochs, build_model, class_attention, finish_fold,
                                        prepare_fold, record_attention, run_fold)
from moodops.pipelines.hooks import Hooks
from moodops.pipelines.train import TrainConfig, _evaluate, _Selection, autocast, resolve_device

logger = logging.getLogger(__name__)

#: ``folds_per_task: auto`` packs at most this many folds on a GPU.
AUTO_MAX_PACK = 8
#: ... and stacks at most about this many weights in all (K × the model's parameters).
AUTO_MAX_WEIGHTS = 20_000_000


def auto_folds_per_task(n_parameters: int, on_gpu: bool) -> int:
    """``folds_per_task: auto``. On a CPU, 1: measured on 2 cores, a packed step of K Mood Reader
    folds at batch 256 was no faster than K separate steps (the CPU is already busy at that batch,
    and vmap falls back to a loop for the CPU flash-attention kernel). On a GPU, as many folds as keep
    the stacked weights under :data:`AUTO_MAX_WEIGHTS`, at most :data:`AUTO_MAX_PACK`: the models
    are 10^4-10^6 parameters, far from filling a GPU."""
    if not on_gpu:
        return 1
    return int(max(1, min(AUTO_MAX_PACK, AUTO_MAX_WEIGHTS // max(1, n_parameters))))


def packable(config: TrainConfig) -> bool:
    """Whether folds of ``config`` can train packed (torch models, not ``val_strategy="inner"``)."""
    return MODELS.get(config.model).framework == "torch" and config.val_strategy != "inner"


def run_folds_packed(config: TrainConfig, folds: list[Fold], features: FeatureSet,
                     hooks: Hooks | None = None) -> list[FoldResult]:
    """Train and test ``folds`` as one packed model (one fold, or a config that cannot pack: one by one).
    Returns their results in the order of ``folds``; ``hooks`` hear of each fold by its own name."""
    hooks = hooks or Hooks()
    if len(folds) < 2 or not packable(config):
        return [run_fold(config, fold, features, hooks) for fold in folds]
    try:
        prepared = [prepare_fold(config, fold, features) for fold in folds]
        with warnings.catch_warnings():  # vmap runs the CPU flash-attention kernel member by member, and says so
            warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet")
            return _train_packed(config, prepared, features, hooks)
    except BaseException as e:
        for fold in folds:
            hooks.on_error(fold.name, e)
        raise


class _StackedAdam:
    """Adam / AdamW (``torch.optim``'s single-tensor update, step for step) over weights stacked along
    axis 0, updating only the members a step names, each with its own step count."""

    def __init__(self, params: dict, config: TrainConfig, n_members: int, betas=(0.9, 0.999), eps: float = 1e-8):
        import torch

        self.params = {n: p for n, p in params.items() if p.requires_grad}
        self.lr, self.weight_decay, self.eps = config.lr, config.weight_decay, eps
        self.decoupled = config.optimizer == "adamw"
        self.beta1, self.beta2 = betas
        self.exp_avg = {n: torch.zeros_like(p) for n, p in self.params.items()}
        self.exp_avg_sq = {n: torch.zeros_like(p) for n, p in self.params.items()}
        self.steps = {n: [0] * n_members for n in self.params}

    def step(self, grads: dict, members: list[int], index) -> None:
        """Apply ``grads`` (name → stacked gradient; None: the weight took no part) to ``members``
        (``index``: their positions, or None for all)."""
        import torch

        with torch.no_grad():
            for name, grad in grads.items():
                if grad is None:
                    continue
                param, m, v = self.params[name], self.exp_avg[name], self.exp_avg_sq[name]
                rows = (lambda t: t) if index is None else (lambda t: t[index])
                g, p, m_k, v_k = rows(grad), rows(param), rows(m), rows(v)
                shape = (-1,) + (1,) * (g.dim() - 1)
                counts = self.steps[name]
                for k in members:
                    counts[k] += 1
                t = [counts[k] for k in members]
                if self.weight_decay:
                    if self.decoupled:
                        p = p * (1 - self.lr * self.weight_decay)
                    else:
                        g = g.add(p, alpha=self.weight_decay)
                m_k = m_k.lerp(g, 1 - self.beta1)
                v_k = (v_k * self.beta2).addcmul(g, g, value=1 - self.beta2)
                step_size = torch.tensor([self.lr / (1 - self.beta1 ** s) for s in t], dtype=p.dtype,
                                         device=p.device).view(shape)
                bc2_sqrt = torch.tensor([(1 - self.beta2 ** s) ** 0.5 for s in t], dtype=p.dtype,
                                        device=p.device).view(shape)
                denom = (v_k.sqrt() / bc2_sqrt).add_(self.eps)
                p = p - step_size * (m_k / denom)
                if index is None:
                    param.copy_(p), m.copy_(m_k), v.copy_(v_k)
                else:
                    param[index], m[index], v[index] = p, m_k, v_k


def _train_packed(config: TrainConfig, prepared: list[Prepared], features: FeatureSet,
                  hooks: Hooks) -> list[FoldResult]:
    import time

    import torch
    import torch.nn.functional as F
    from torch.func import functional_call, stack_module_state, vmap

    if config.num_threads:
        torch.set_num_threads(int(config.num_threads))
    device = resolve_device(config.device)
    K = len(prepared)
    names = [p.fold.name for p in prepared]
    n_classes = prepared[0].n_classes
    models = [build_model(config, p.shapes, p.n_classes, p.seed, device) for p in prepared]
    for name, model in zip(names, models):
        hooks.on_train_start(name, model)

    def tensors(p: Prepared, rows: np.ndarray):
        return ({k: torch.from_numpy(v).to(device) for k, v in p.part(rows).items()},
                torch.from_numpy(features.y[rows].astype(np.int64)).to(device))

    train = [tensors(p, p.fold.train) for p in prepared]
    validation = [tensors(p, p.fold.validation) for p in prepared]
    test = [tensors(p, p.fold.test) for p in prepared]
    generators = [torch.Generator().manual_seed(p.seed) for p in prepared]

    stacked, buffers = stack_module_state(models)
    params = {n: (v.detach().requires_grad_() if models[0].get_parameter(n).requires_grad else v.detach())
              for n, v in stacked.items()}
    base = copy.deepcopy(models[0]).to("meta")
    member = models[0]  # a working copy: member k's weights are loaded into it to validate and test k
    member_params, member_buffers = dict(member.named_parameters()), dict(member.named_buffers())
    del models
    auxiliary = getattr(base, "auxiliary_loss", None)

    def loss_of_one(p, b, x, extras, y):
        logits = functional_call(base, (p, b), (x,), extras)
        loss = F.cross_entropy(logits.float(), y)
        aux = auxiliary() if auxiliary is not None else None
        return loss, (aux if aux is not None else torch.zeros_like(loss)), (logits.argmax(1) == y).sum()

    losses = vmap(loss_of_one, randomness="different")
    optimizer = _StackedAdam(params, config, K)
    trainable = [n for n, p in params.items() if p.requires_grad]
    precision = autocast(config, device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def load(k: int):
        with torch.no_grad():
            for n, t in member_params.items():
                t.copy_(params[n][k])
            for n, t in member_buffers.items():
                t.copy_(buffers[n][k])
        return member

    def train_step(group: list[int], batches: list, sums: dict) -> None:
        index = None if len(group) == K else torch.tensor(group, device=device)
        p = params if index is None else {n: v[index] for n, v in params.items()}
        b = buffers if index is None else {n: v[index] for n, v in buffers.items()}
        x = torch.stack([train[k][0]["x"][i] for k, i in zip(group, batches)])
        extras = {name: torch.stack([train[k][0][name][i] for k, i in zip(group, batches)])
                  for name in train[group[0]][0] if name != "x"}
        y = torch.stack([train[k][1][i] for k, i in zip(group, batches)])
        with precision:
            loss, aux, correct = losses(p, b, x, extras, y)
        total = loss + aux
        grads = torch.autograd.grad(total.sum(), [params[n] for n in trainable], allow_unused=True)
        optimizer.step(dict(zip(trainable, grads)), group, index)
        if index is not None:  # running statistics (BatchNorm) that the step updated in its copy
            with torch.no_grad():
                for n in buffers:
                    buffers[n][index] = b[n]
        size = float(len(batches[0]))
        for j, k in enumerate(group):
            sums[k] += torch.stack([total[j].detach().double(), aux[j].detach().double(),
                                    correct[j].double()]) * torch.tensor([size, size, 1.0], dtype=torch.float64,
                                                                         device=device)

    maps = config.attention_maps and hasattr(member, "electrode_attention")
    moments = attention_epochs(config.epochs) if maps else []
    during: list[list[np.ndarray]] = [[] for _ in range(K)]
    histories: list[list[dict[str, float]]] = [[] for _ in range(K)]
    selections = [_Selection() for _ in range(K)]
    stale = [0] * K
    active = list(range(K))
    val_classes = [int(torch.unique(y).numel()) if len(y) else 0 for _, y in validation]
    selecting = [c >= 2 for c in val_classes]
    for k in range(K):
        if len(validation[k][1]) and not selecting[k]:
            logger.warning("%s: the validation part holds a single class; early stopping is off (all %d epochs "
                           "run, the last is kept)", names[k], config.epochs)
    first = min(config.first_selectable_epoch, config.epochs)
    has_aux = auxiliary is not None
    t_start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        if not active:
            break
        base.train()
        batches = {}
        for k in active:  # each member's own order, drawn as fit() draws it
            n = len(train[k][1])
            order = torch.randperm(n, generator=generators[k]).to(device)
            batches[k] = [order[s:s + config.batch_size] for s in range(0, n, config.batch_size)
                          if not (len(order[s:s + config.batch_size]) < 2 and n > 1)]
        sums = {k: torch.zeros(3, dtype=torch.float64, device=device) for k in active}
        for position in range(max(len(b) for b in batches.values())):
            by_size = defaultdict(list)
            for k in active:
                if position < len(batches[k]):
                    by_size[len(batches[k][position])].append(k)
            for group in by_size.values():
                train_step(group, [batches[k][position] for k in group], sums)
        for k in list(active):
            n = len(train[k][1])
            total_loss, total_aux, correct = sums[k].tolist()
            if not np.isfinite(total_loss):
                raise FloatingPointError(f"{names[k]}: training loss became non-finite in epoch {epoch} "
                                         f"(lr={config.lr})")
            metrics = {"train_loss": total_loss / n, "train_accuracy": int(correct) / n}
            if has_aux:
                metrics["train_auxiliary_loss"] = total_aux / n
            model = load(k)
            (x_val, y_val) = validation[k]
            if len(y_val):
                val_loss, val_pred = _evaluate(model, x_val, y_val, config.batch_size * 4, loss_fn, config)
                metrics.update(val_loss=val_loss, val_accuracy=float((val_pred == y_val.cpu().numpy()).mean()))
            histories[k].append(metrics)
            hooks.on_epoch_end(names[k], epoch, metrics)
            if maps and epoch in moments:
                during[k].append(class_attention(model, test[k][0]["x"], features.y[prepared[k].fold.test],
                                                 n_classes, config.batch_size * 4))
            if selecting[k] and epoch >= first:
                if selections[k].offer(epoch, metrics["val_loss"], metrics["val_accuracy"], model):
                    stale[k] = 0
                else:
                    stale[k] += 1
                    if stale[k] >= config.patience:
                        logger.debug("%s: early stop at epoch %d (best %d)", names[k], epoch, selections[k].best)
                        active.remove(k)
    logger.info("%d folds trained packed in %.1f s", K, time.perf_counter() - t_start)

    results = []
    for k, p in enumerate(prepared):
        model = load(k)
        history, selection = histories[k], selections[k]
        best = selection.best if selection.records else len(history)
        if selection.records and best != len(history):
            model.load_state_dict(selection.states[best])
        attention: dict[str, np.ndarray] = {}
        y_test = features.y[p.fold.test]
        if maps:
            record_attention(attention, model, test[k][0], y_test, n_classes, config, moments, during[k],
                             len(history))
        _, y_pred = _evaluate(model, test[k][0], test[k][1], config.batch_size * 4, loss_fn, config)
        state = {"state_dict": {n: v.detach().cpu().clone() for n, v in model.state_dict().items()}}
        results.append(finish_fold(config, p, features, hooks, y_pred, history, best, state, str(device),
                                   attention, time.perf_counter()))
    return results
