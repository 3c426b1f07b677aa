"""Benchmark (issue 13, §3.5): do Mood Reader's attention maps single out the channels that carry the label?

    .venv/bin/python tests/benchmarks/bench_attention_readings.py [--seeds 10]

Data where the answer is known (``label_in_channels`` of tests/orchestrator/test_attention_maps.py): 8
channels of Gaussian DE, the label added to channels 2 and 5 only (effect 0.8, every window and band).
For training seeds 0..K-1, with the data seed 0 and again equal to the training seed, one ``stib_cf``
fold (8:2 trial split, 30 epochs, dim 16, 2 heads, no dropout) is trained by ``run_fold``; on its test
part, per electrode, each reading below is normalised to sum to 1 per sample and scaled so 1.0 is the
even share. For each reading and run: the label channels' mean over the others' mean, and whether the
label channels are the top two.

- ``recorded``: what moodops logs (``electrode_attention``: attention weights each key electrode receives,
  averaged over heads, queries and spatial blocks; class means averaged over the classes);
- ``class_contrast``: |class 0 − class 1| of the recorded class maps;
- ``weights``: the same weights averaged over test samples (not per class first);
- ``weight_x_value_norm``: Kobayashi et al. 2020's norm-based reading, Σ_i ||Σ_h α^h_ij W_o^h v^h_j||;
- ``output_norm``: the norm of the attention output at each electrode's position (§3.5's "attention outputs");
- ``relevance``: gradient × input (``class_relevance``), the map moodops draws beside the weights.

Writes tests/benchmarks/results/attention-readings.json.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "orchestrator"))
from _machine import machine  # noqa: E402

LABEL = [2, 5]


def readings(model, x):
    """(weights, weight × value norm, output norm), each (C,) averaged over samples, spatial blocks and heads."""
    import torch

    branch = model.branch
    b, n, c, f = x.shape
    h = branch.embed_spatial(x.permute(0, 2, 1, 3).reshape(b, c, n * f)) + branch.channel_position
    weights, kobayashi, outputs = [], [], []
    for block in branch.spatial:
        normed = block.norm_in(h)
        mha = block.attention
        out, per_head = mha(normed, normed, normed, need_weights=True, average_attn_weights=False)  # (b, H, C, C)
        d, heads = mha.embed_dim, mha.num_heads
        v = torch.nn.functional.linear(normed, mha.in_proj_weight[2 * d:], mha.in_proj_bias[2 * d:])
        value = torch.einsum("bjhk,dhk->bjhd", v.view(b, c, heads, d // heads), mha.out_proj.weight.view(d, heads, -1))
        kobayashi.append(torch.einsum("bhij,bjhd->bijd", per_head, value).norm(dim=-1).sum(1))
        weights.append(per_head.mean(1).mean(1))
        outputs.append(out.norm(dim=-1))
        h = block.norm_out(out + normed)

    def per_electrode(maps):
        m = torch.stack(maps).mean(0)
        return ((m / m.sum(1, keepdim=True)).mean(0) * c).numpy()

    return per_electrode(weights), per_electrode(kobayashi), per_electrode(outputs)


def main() -> None:
    import numpy as np
    import torch

    from test_attention_maps import label_in_channels

    from moodops.components.protocols import TrainTestSplit
    from moodops.pipelines.evaluate import build_model, prepare_fold, run_fold
    from moodops.pipelines.train import TrainConfig

    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--effect", type=float, default=0.8, help="the label's shift in channels 2 and 5")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "attention-readings.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = []
    for seed in range(args.seeds):
        for data_seed in sorted({0, seed}):
            features = label_in_channels(effect=args.effect, seed=data_seed)
            fold = TrainTestSplit(seed=0).split(features)[0]
            config = TrainConfig(model="mood_reader", variant="stib_cf", epochs=30, batch_size=32, lr=3e-3,
                                 patience=100, seed=seed, model_params={"dim": 16, "heads": 2, "dropout": 0.0})
            result = run_fold(config, fold, features)
            prepared = prepare_fold(config, fold, features)
            model = build_model(config, prepared.shapes, prepared.n_classes, seed, torch.device("cpu"))
            model.load_state_dict(torch.load(io.BytesIO(result.weights), weights_only=True)["state_dict"])
            model.eval()
            with torch.no_grad():
                weights, kobayashi, outputs = readings(model, torch.from_numpy(prepared.part(fold.test)["x"]))
            test = result.attention["test"] * 8
            maps = {"recorded": np.nanmean(test, axis=0), "class_contrast": np.abs(test[0] - test[1]),
                    "weights": weights, "weight_x_value_norm": kobayashi, "output_norm": outputs,
                    "relevance": np.nanmean(result.attention["relevance"], axis=0) * 8}
            row = {"seed": seed, "data_seed": data_seed, "test_accuracy": result.metrics["accuracy"]}
            for name, m in maps.items():
                row[name] = {"label_over_rest": round(float(m[LABEL].mean() / np.delete(m, LABEL).mean()), 3),
                             "label_on_top": bool(set(np.argsort(m)[-2:]) == set(LABEL))}
            runs.append(row)
            print(json.dumps(row), flush=True)
    summary = {}
    for name in runs[0]:
        if not isinstance(runs[0][name], dict):
            continue
        ratios = [r[name]["label_over_rest"] for r in runs]
        summary[name] = {"label_on_top": sum(r[name]["label_on_top"] for r in runs), "ratio_above_1": sum(x > 1 for x in ratios),
                         "runs": len(runs), "ratio_min": min(ratios), "ratio_median": float(np.median(ratios)),
                         "ratio_max": max(ratios)}
        print(name, summary[name])
    out = {"benchmark": "per-electrode readings of Mood Reader's spatial attention against channels known to carry the label",
           "command": " ".join(["python", *sys.argv]), "summary": summary, "runs": runs, "machine": machine()}
    path = args.out
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"written {path}")


if __name__ == "__main__":
    main()
