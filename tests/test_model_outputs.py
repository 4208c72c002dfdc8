"""Models that return a tuple or a dict: every method, the faithfulness measures and the CLI read their logits."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torchvision.models import resnet18

from gradcam_core import METHODS, compute_cam, load_model
from gradcam_core.cli import main
from gradcam_core.demo.model import SAMPLES_DIR
from gradcam_core.demo.world import CATEGORIES
from gradcam_core.faithfulness import evaluate_map, random_map


class Tupled(nn.Module):
    """Returns (logits, pooled features), as models with auxiliary outputs do."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.inner(x)
        return logits, x.mean(dim=(2, 3))


class Dicted(nn.Module):
    """Returns {"aux": ..., "logits": ...}, as Hugging Face style models do."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"aux": x.mean(dim=(2, 3)), "logits": self.inner(x)}


@pytest.fixture(scope="module")
def net() -> nn.Module:
    torch.manual_seed(0)
    return resnet18(weights=None, num_classes=10).eval()


@pytest.fixture(scope="module")
def x() -> Tensor:
    return torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("wrapper", [Tupled, Dicted])
@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_on_a_resnet18_returning_a_tuple_or_dict(
    net: nn.Module, x: Tensor, wrapper: type[nn.Module], method: str
) -> None:
    plain = compute_cam(net, x, "layer2", classes=[1, 4], method=method)
    wrapped = compute_cam(wrapper(net).eval(), x, "inner.layer2", classes=[1, 4], method=method)
    torch.testing.assert_close(wrapped.maps, plain.maps, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(wrapped.logits, plain.logits)


@pytest.mark.parametrize("wrapper", [Tupled, Dicted])
@pytest.mark.parametrize("view", [{}, {"counterfactual": True}, {"contrast": 2}])
def test_faithfulness_on_a_resnet18_returning_a_tuple_or_dict(
    net: nn.Module, x: Tensor, wrapper: type[nn.Module], view: dict[str, object]
) -> None:
    image, saliency = x[:1], random_map((4, 4), seed=3)
    score: object = 1  # the class's probability
    if view:
        from gradcam_core.faithfulness import target_score  # the per-view scores are new

        score = target_score(1, **view)  # type: ignore[arg-type]
    plain = evaluate_map(net, image, saliency, score, steps=4)
    wrapped = evaluate_map(wrapper(net).eval(), image, saliency, score, steps=4)
    assert wrapped.curves.deletion == pytest.approx(plain.curves.deletion, abs=1e-6)
    assert wrapped.curves.insertion == pytest.approx(plain.curves.insertion, abs=1e-6)
    assert wrapped.average_drop == pytest.approx(plain.average_drop, abs=1e-4)


def test_cli_top5_on_a_torchscript_model_returning_a_dict(tmp_path: Path) -> None:
    model_file, labels = tmp_path / "shapes_dict.pt", tmp_path / "shapes.txt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in torch 2.14
        torch.jit.script(Dicted(load_model("shapes-demo").model).eval()).save(str(model_file))
    labels.write_text("\n".join(CATEGORIES))
    settings = ["--input-size", "128,128", "--resize", "none", "--mean", "0.5", "--std", "0.25"]
    common = ["explain", str(SAMPLES_DIR / "cross.png"), "--classes", "top5"]
    assert main([*common, "--model", "shapes-demo", "--out", str(tmp_path / "plain")]) == 0
    mine = ["--model", str(model_file), "--labels", str(labels), "--layer", "inner.features.block4", *settings]
    assert main([*common, *mine, "--out", str(tmp_path / "dict")]) == 0
    plain, wrapped = (json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("plain", "dict"))
    assert [c["name"] for c in wrapped["items"][0]["top5"]] == [c["name"] for c in plain["items"][0]["top5"]]
    assert [m["name"] for m in wrapped["items"][0]["maps"]] == [c["name"] for c in plain["items"][0]["top5"]]
