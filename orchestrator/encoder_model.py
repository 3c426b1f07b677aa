"""MLflow "model from code" for moodops' pretrained encoders (logged next to the weights).

``mlflow.pyfunc.load_model("models:/moodops-mbsm@latest")`` runs this file (it
is stored with the model; nothing is unpickled) and returns a model whose
``predict`` maps raw EEG segments ``(batch, channels, samples)`` (MBSM) to
the encoder's token embeddings ``(batch, tokens, dim)``; for MV-SSTMA it maps
``{"x": (batch, T, C, F), "eye": (batch, T, E)}`` to the extractors'
representations. Weights are read with ``torch.load(weights_only=True)``.
moodops itself must be installed where the model is loaded.
"""
from __future__ import annotations

import json
from pathlib import Path

import mlflow
from mlflow.pyfunc import PythonModel


class PretrainedEncoder(PythonModel):
    # Inputs are numpy arrays (or a dict of them), which MLflow's type-hint validation does not cover.
    _skip_type_hint_validation = True

    def load_context(self, context) -> None:
        import torch

        self.contract = json.loads(Path(context.artifacts["contract"]).read_text())
        state = torch.load(context.artifacts["weights"], map_location="cpu", weights_only=True)
        if self.contract["method"] == "mbsm":
            from moodops.components.models.mood_reader import MBSMEncoder

            p = self.contract["model_params"]
            self.module = MBSMEncoder(self.contract["n_channels"], self.contract["n_samples"], p["token_len"],
                                      p["encoder_dim"], p["encoder_depth"], p["encoder_heads"], dropout=0.0)
            self.module.load_state_dict({k.removeprefix("encoder."): v for k, v in state.items()})
        else:
            from moodops.components.models.mv_sstma import MultimodalSSTMA

            shapes = {k: tuple(v) for k, v in self.contract["shapes"].items()}
            mode = "attention" if "eye" in shapes else "eeg"
            self.module = MultimodalSSTMA(shapes, 2, mode=mode, **self.contract["model_params"])
            self.module.load_state_dict(state, strict=False)
        self.module.eval()

    def predict(self, context, model_input, params=None):
        import numpy as np
        import torch

        with torch.no_grad():
            if self.contract["method"] == "mbsm":
                return self.module(torch.as_tensor(np.asarray(model_input, dtype=np.float32))).numpy()
            out = {}
            if self.module.eeg_extractor is not None:
                out["eeg"] = self.module.eeg_extractor(torch.as_tensor(model_input["x"], dtype=torch.float32))
            if self.module.eye_extractor is not None:
                eye = torch.as_tensor(model_input["eye"], dtype=torch.float32).unsqueeze(-1)
                out["eye"] = self.module.eye_extractor(eye)
            return {k: v.numpy() for k, v in out.items()}


mlflow.models.set_model(PretrainedEncoder())
