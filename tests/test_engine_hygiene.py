"""The engine leaves models untouched, is safe across threads, and never explains only one image."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from gradcam_core import CamResult, compute_cam, list_layers, load_model
from tests.conftest import TinyNet, hook_count


def snapshot(model: nn.Module) -> tuple[list[bool], list[bool], list[object]]:
    return (
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [p.grad for p in model.parameters()],
    )


def test_model_is_exactly_as_before_after_success(tiny: TinyNet, images: torch.Tensor) -> None:
    seen: list[torch.Size] = []
    tiny.features[0].register_forward_hook(lambda _m, _i, out: seen.append(out.shape))
    before = snapshot(tiny)
    compute_cam(tiny, images, "features.3", classes=[0, 1, 2])
    compute_cam(tiny, images, "features.3", classes=[0, 1, 2], method="guided-gradcam")
    assert hook_count(tiny) == 1, "only the caller's own hook remains"
    assert len(seen) == 2, "the caller's hook still runs"
    assert snapshot(tiny) == before
    assert all(p.grad is None for p in tiny.parameters())


@pytest.mark.parametrize(
    ("layer", "classes", "message"),
    [
        ("head", None, "not a spatial map"),  # fails inside the forward pass, in our hook
        ("features.3", [99], "out of range"),  # fails after the forward pass
        ("nope", None, "unknown layer"),
    ],
)
def test_model_is_exactly_as_before_after_failure(
    tiny: TinyNet, images: torch.Tensor, layer: str, classes: list[int] | None, message: str
) -> None:
    before = snapshot(tiny)
    grad_mode = torch.is_grad_enabled()
    with pytest.raises(ValueError, match=message):
        compute_cam(tiny, images, layer, classes=classes)
    assert hook_count(tiny) == 0
    assert snapshot(tiny) == before
    assert torch.is_grad_enabled() == grad_mode


def test_no_parameter_gradient_and_no_backward_below_the_layer(images: torch.Tensor) -> None:
    """A module whose backward raises sits below the target layer: the call must never reach it."""

    class Tripwire(torch.autograd.Function):
        @staticmethod
        def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
            return x.clone()

        @staticmethod
        def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
            raise AssertionError("backward went below the target layer")

    class Guarded(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return Tripwire.apply(x)

    torch.manual_seed(0)
    net = TinyNet()
    net.features.insert(0, Guarded())
    net.eval()  # parameters still require grad: a caller's ordinary model
    x = images.clone().requires_grad_(True)
    result = compute_cam(net, x, "features.4", classes=[0, 1])
    assert result.maps.amax() > 0
    assert all(p.grad is None for p in net.parameters())
    assert x.grad is None


def test_works_under_no_grad_and_inference_mode(tiny: TinyNet, images: torch.Tensor) -> None:
    expected = compute_cam(tiny, images, "features.3").maps
    with torch.no_grad():
        torch.testing.assert_close(compute_cam(tiny, images, "features.3").maps, expected)
        assert not torch.is_grad_enabled()
    with torch.inference_mode():
        frozen = images.clone()  # an inference tensor
        torch.testing.assert_close(compute_cam(tiny, frozen, "features.3").maps, expected)
        assert torch.is_inference_mode_enabled()


def test_training_mode_is_refused_not_changed(tiny: TinyNet, images: torch.Tensor) -> None:
    tiny.train()
    with pytest.raises(ValueError, match=r"model.eval\(\)"):
        compute_cam(tiny, images, "features.3")
    assert tiny.training


def test_each_image_of_a_batch_gets_its_own_map(tiny: TinyNet, images: torch.Tensor) -> None:
    batch = compute_cam(tiny, images, "features.3", classes=[[0, 1], [2, 3], [4, 0]])
    assert batch.classes.tolist() == [[0, 1], [2, 3], [4, 0]]
    for n in range(3):
        alone = compute_cam(tiny, images[n : n + 1], "features.3", classes=[batch.classes[n].tolist()])
        torch.testing.assert_close(batch.maps[n], alone.maps[0])
    assert not torch.equal(batch.maps[0], batch.maps[1])


def test_frozen_model_from_load_model_works() -> None:
    loaded = load_model("resnet18", "random", device="cpu")
    assert not any(p.requires_grad for p in loaded.model.parameters())
    result = compute_cam(loaded.model, torch.randn(2, 3, 64, 64), "layer3", classes=[1, 2, 3])
    assert result.maps.shape == (2, 3, 4, 4)
    assert not any(p.requires_grad for p in loaded.model.parameters())


def pixels_and_maps(result: CamResult) -> tuple[torch.Tensor, ...]:
    return (result.maps,) if result.guided is None else (result.maps, result.guided)


def test_threads_sharing_one_model_match_sequential_results() -> None:
    """Nine threads, Guided Grad-CAM among them (its ReLU guidance must stay in its own thread)."""
    model = load_model("resnet18", "random", device="cpu").model
    gen = torch.Generator().manual_seed(3)
    jobs = [
        (torch.randn(2, 3, 64, 64, generator=gen), [i, i + 7], m)
        for i, m in enumerate(["gradcam", "layercam", "guided-gradcam"] * 3)
    ]
    expected = [pixels_and_maps(compute_cam(model, x, "layer4", classes=c, method=m)) for x, c, m in jobs]
    plain_x = torch.randn(1, 3, 64, 64, generator=gen)
    with torch.no_grad():
        plain_expected = model(plain_x)
    results: dict[int, tuple[torch.Tensor, ...]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs) + 1)

    def explain(i: int) -> None:
        try:
            start.wait()
            for _ in range(3):
                x, classes, method = jobs[i]
                results[i] = pixels_and_maps(compute_cam(model, x, "layer4", classes=classes, method=method))
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    def plain_forward() -> None:
        start.wait()
        for _ in range(10):
            with torch.no_grad():
                torch.testing.assert_close(model(plain_x), plain_expected)  # other threads' hooks stay out

    threads = [threading.Thread(target=explain, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    plain_forward()
    for t in threads:
        t.join()
    assert not errors, errors
    for i, maps in enumerate(expected):
        torch.testing.assert_close(results[i], maps)
    assert hook_count(model) == 0


@pytest.mark.parametrize("name", ["vgg11", "densenet121"])
def test_every_spatial_layer_works_with_in_place_relus(name: str) -> None:
    import torchvision

    model = torchvision.models.get_model(name, weights=None).eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    layers = list_layers(model, 64)
    assert len(layers) > 10
    for i, info in enumerate(layers):
        result = compute_cam(model, x, info.name, classes=[0, 1])
        assert result.maps.shape == (1, 2, *info.shape[1:]), info
        assert torch.isfinite(result.maps).all(), info
        if name == "densenet121" and i % 8:  # DenseNet's 360 layers: every eighth, for time
            continue
        guided = compute_cam(model, x, info.name, classes=[0, 1], method="guided-gradcam")
        torch.testing.assert_close(guided.maps, result.maps, msg=info.name)  # its coarse map is Grad-CAM's
        assert guided.guided is not None and guided.guided.shape == (1, 2, 3, 64, 64) and guided.guided.any(), info
    assert hook_count(model) == 0


class Gated(nn.Module):
    """The target's output is multiplied by an activation made before it: the inference-mode
    shortcut cannot record that product, so the engine must fall back to no_grad."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Conv2d(3, 4, 3, padding=1)
        self.second = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.first(x))
        b = torch.relu(self.second(a))
        return self.head((a * b).mean(dim=(2, 3)))


def test_layer_feeding_a_product_with_an_earlier_tensor(images: torch.Tensor) -> None:
    net = Gated().eval()
    result = compute_cam(net, images, "second", classes=[0, 2])
    a = torch.relu(net.first(images)).detach()
    b = net.second(a).detach().requires_grad_(True)  # the conv's own output, before the ReLU
    logits = net.head((a * torch.relu(b)).mean(dim=(2, 3)))
    for j, cls in enumerate([0, 2]):
        (grad,) = torch.autograd.grad(logits[:, cls].sum(), b, retain_graph=True)
        expected = torch.relu((grad.mean(dim=(2, 3))[:, :, None, None] * b.detach()).sum(1))
        torch.testing.assert_close(result.maps[:, j], expected)
    assert hook_count(net) == 0
    assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled()


def test_layer_that_never_reaches_the_logits_warns_instead_of_a_blank_map(images: torch.Tensor) -> None:
    class SideBranch(TinyNet):
        def __init__(self) -> None:
            super().__init__()
            self.side = nn.Conv2d(3, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.side(x)  # computed, never used
            return super().forward(x)

    result = compute_cam(SideBranch().eval(), images, "side")
    assert not result.maps.any()
    assert len(result.warnings) == 1 and "receives no gradient" in result.warnings[0]


@pytest.mark.parametrize(
    ("wrap", "message"),
    [
        (lambda out: (out, out[:, :2]), None),  # logits with an auxiliary output
        (lambda out: {"logits": out, "features": out}, None),
        (lambda out: {"scores": out[:, :, None]}, "dict with keys scores"),
        (lambda out: out[:, :, None], "must return logits"),
    ],
    ids=["tuple", "dict-logits", "dict-other", "3-d"],
)
def test_model_outputs_other_than_a_tensor(tiny: TinyNet, images: torch.Tensor, wrap, message) -> None:  # type: ignore[no-untyped-def]
    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = tiny

        def forward(self, x: torch.Tensor):  # type: ignore[no-untyped-def]
            return wrap(self.inner(x))

    model = Wrapped().eval()
    if message is None:
        result = compute_cam(model, images, "inner.features.3", classes=[1])
        torch.testing.assert_close(result.maps, compute_cam(tiny, images, "features.3", classes=[1]).maps)
    else:
        with pytest.raises(ValueError, match=message):
            compute_cam(model, images, "inner.features.3")


class Watch(nn.Module):
    """Passes its input on, noting whether autograd is recording when it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((torch.is_grad_enabled(), x.requires_grad))
        return x


class ReusedActivation(nn.Module):
    """One activation module run after the stem and again after the head, as EfficientNet's ``_swish``."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.ReLU6()
        self.watch = Watch()
        self.body = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.head = nn.Conv2d(8, 16, 1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(self.watch(self.act(self.stem(x))))
        return self.fc(self.act(self.head(x)).mean(dim=(2, 3)))


def test_a_module_run_twice_records_autograd_from_its_explained_call_only(images: torch.Tensor) -> None:
    net = ReusedActivation().eval()
    info = next(i for i in list_layers(net, 16) if i.name == "act")
    assert (info.calls, info.shape) == (2, (16, 8, 8))  # the last call's shape, and how often it runs
    net.watch.seen.clear()  # list_layers' dry pass
    fast = compute_cam(net, images, info, classes=[0, 3])
    assert net.watch.seen == [(False, False)], "autograd recorded between the first call and the explained one"
    slow = compute_cam(net, images, "act", classes=[0, 3])  # by name only: recording from the first call
    assert net.watch.seen[1] == (True, True)
    assert torch.equal(fast.maps, slow.maps) and torch.equal(fast.logits, slow.logits)
    assert fast.maps.shape == (images.shape[0], 2, 8, 8) and float(fast.maps.sum()) > 0
    assert fast.layer == "act" and hook_count(net) == 0
    with torch.no_grad():  # also under the slow path's no_grad fallback, and inference mode outside
        assert torch.equal(compute_cam(net, images, info, classes=[0, 3]).maps, fast.maps)
    assert net.watch.seen[2] == (False, False)


def test_eight_threads_at_a_layer_run_twice_get_their_own_maps() -> None:
    torch.manual_seed(0)
    net = ReusedActivation().eval()
    info = next(i for i in list_layers(net, 32) if i.name == "act")
    inputs = [torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(8)]
    expected = [compute_cam(net, x, "act").maps for x in inputs]
    got: dict[int, torch.Tensor] = {}
    start = threading.Barrier(len(inputs))

    def work(i: int) -> None:
        start.wait()
        for _ in range(5):
            got[i] = compute_cam(net, inputs[i], info).maps

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, maps in enumerate(expected):
        assert torch.equal(got[i], maps), i
    assert hook_count(net) == 0
