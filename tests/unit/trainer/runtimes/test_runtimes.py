"""The deployment runtimes: ONNX export and ONNX Runtime INT8 really change the stored model and
keep its predictions; the compiled runtime runs torchao/PT2E int8 models; the artifact of each
form loads back; `auto` chooses the fastest candidate within the budget."""

from __future__ import annotations

from pathlib import Path

import onnx
import onnxruntime
import pytest
import torch
from _tiny import accuracy, cnn, mlp, train
from torch import nn

from optikube_trainer.compression import WeightSharingConfig, share_weights_
from optikube_trainer.evaluation.latency import compare_latency, served_call
from optikube_trainer.export import export_onnx_model, load_exported
from optikube_trainer.runtimes.candidates import Candidate, decoded
from optikube_trainer.runtimes.onnx_model import OnnxModule, export_onnx
from optikube_trainer.runtimes.onnx_quantize import WEIGHT_ONLY_SESSION, quantize_onnx
from optikube_trainer.runtimes.selection import (
    FixedBatches,
    RuntimeResult,
    batch_sizes,
    choose,
    slower_than_baseline,
)


def _images(samples: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 4, (samples,), generator=generator)
    images = torch.randn(samples, 1, 4, 4, generator=generator) * 0.3
    images[torch.arange(samples), 0, labels, labels] += 2.0
    return images, labels


@pytest.mark.parametrize("method", ["static", "dynamic", "weightOnly"])
def test_onnx_runtime_int8_stores_int8_and_keeps_accuracy(tmp_path: Path, method: str) -> None:
    images, labels = _images()
    model = train(cnn(channels=32), images, labels, epochs=8)
    before = accuracy(model, images, labels)
    export_onnx(model, images[:4], tmp_path / "float.onnx")
    count = quantize_onnx(
        tmp_path / "float.onnx", tmp_path / "int8.onnx", method, [images[:64], images[64:128]]
    )
    # static and weight-only quantize the convolutions and the Linear; dynamic only MatMul/Gemm
    assert count == (1 if method == "dynamic" else 3)
    float_size, int8_size = (tmp_path / "float.onnx").stat().st_size, (tmp_path / "int8.onnx").stat().st_size
    # tiny layers: the scales and QDQ nodes cost a few KB of the 4x the int8 weights save
    assert int8_size < float_size / (2.5 if method != "dynamic" else 1.0)
    config = WEIGHT_ONLY_SESSION if method == "weightOnly" else {}
    runtime = OnnxModule(tmp_path / "int8.onnx", config=config)
    assert accuracy(runtime, images, labels) >= before - 0.02
    assert torch.allclose(OnnxModule(tmp_path / "float.onnx")(images[:8]), model(images[:8]), atol=1e-4)


def test_weight_only_onnx_is_folded_to_float_at_load(tmp_path: Path) -> None:
    images, labels = _images()
    model = train(mlp(width=64, features=16), images.flatten(1), labels, epochs=5)
    export_onnx(model, images.flatten(1)[:4], tmp_path / "float.onnx")
    quantize_onnx(tmp_path / "float.onnx", tmp_path / "wo.onnx", "weightOnly")
    graph = onnx.load(str(tmp_path / "wo.onnx")).graph
    assert sum(node.op_type == "DequantizeLinear" for node in graph.node) == 3
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry(*next(iter(WEIGHT_ONLY_SESSION.items())))
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    onnxruntime.InferenceSession(str(tmp_path / "wo.onnx"), options, providers=["CPUExecutionProvider"])
    optimized = onnx.load(str(tmp_path / "optimized.onnx")).graph
    assert not any(node.op_type == "DequantizeLinear" for node in optimized.node)  # float compute


def test_a_transformer_exports_and_quantizes_for_onnx_runtime(tmp_path: Path) -> None:
    # in eval mode without gradients nn.TransformerEncoderLayer takes PyTorch's fused fast path,
    # which no exporter translates: the TorchScript export failed and the dynamo graph that took
    # its place was refused by onnxruntime.quantization's shape inference
    from optikube_trainer.models.builtin import TextTransformer

    torch.manual_seed(0)
    model = TextTransformer(50, 12, 4, width=32, depth=2, heads=4).eval()
    ids = torch.randint(1, 50, (16, 12))
    ids[:, 8:] = 0  # padding, as the tokenizer leaves it
    assert export_onnx(model, ids, tmp_path / "float.onnx") == "torchscript"
    assert torch.backends.mha.get_fastpath_enabled()  # restored after the export
    with torch.no_grad():
        expected = model(ids)
    assert torch.allclose(OnnxModule(tmp_path / "float.onnx")(ids), expected, atol=1e-4)
    assert quantize_onnx(tmp_path / "float.onnx", tmp_path / "int8.onnx", "dynamic") >= 4
    assert OnnxModule(tmp_path / "int8.onnx")(ids).shape == (16, 4)


def test_weight_shared_layers_export_decoded(tmp_path: Path) -> None:
    inputs = torch.randn(128, 16)
    model = mlp(width=64)
    share_weights_(model, WeightSharingConfig(clusters=8))
    plain = decoded(model)
    assert all(type(m) in (nn.Linear, nn.ReLU, nn.Sequential) for m in plain.modules())
    assert torch.allclose(plain(inputs), model(inputs), atol=1e-6)
    export_onnx(plain, inputs[:4], tmp_path / "m.onnx")
    assert torch.allclose(OnnxModule(tmp_path / "m.onnx")(inputs), model(inputs), atol=1e-4)


def test_onnx_artifact_loads_with_optikube_and_with_onnxruntime_alone(tmp_path: Path) -> None:
    model = mlp(width=32).eval()
    example = torch.randn(4, 16)
    export_onnx(model, example, tmp_path / "f.onnx")
    artifact = export_onnx_model(
        tmp_path / "f.onnx", tmp_path / "model", example_inputs=example, session_config={}, description={}
    )
    assert (
        artifact.format == "onnx"
        and artifact.size_bytes == (tmp_path / "model" / "model.onnx").stat().st_size
    )
    loaded = load_exported(tmp_path / "model")
    assert torch.allclose(loaded(example), model(example), atol=1e-5)
    session = onnxruntime.InferenceSession(str(tmp_path / "model" / "model.onnx"))
    (logits,) = session.run(None, {"input": example.numpy()})
    assert logits.shape == (4, 4)


def test_fixed_batches_pad_the_last_chunk_and_trim() -> None:
    calls: list[int] = []

    class Spy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(x.shape[0])
            return x * 2

    out = FixedBatches(Spy())(torch.arange(70.0).reshape(70, 1))
    assert calls == [32, 32, 32] and out.shape == (70, 1) and out[-1, 0] == 138.0


def test_compare_latency_times_every_model_at_every_batch_size() -> None:
    models = {"small": mlp(width=8).eval(), "large": mlp(width=512).eval()}
    timings = compare_latency(models, torch.randn(8, 16), runs=5, warmup=1)
    assert set(timings) == {"small", "large"}
    assert set(timings["small"]) == {"batch1P50", "batch1P90", "batch32P50", "batch32P90"}
    assert all(value > 0 for row in timings.values() for value in row.values())


def test_compare_latency_varies_the_neighbour_and_repeats_each_call() -> None:
    # in a fixed or rotating order each model always ran right after the same other model (and
    # paid for its spinning threads); now every timed call follows an untimed call of itself
    calls: list[str] = []

    def recorder(name: str) -> nn.Module:
        class Recorder(nn.Module):
            def forward(self, inputs: torch.Tensor) -> torch.Tensor:
                calls.append(name)
                return inputs

        return Recorder()

    names = ["a", "b", "c", "d"]
    compare_latency({n: recorder(n) for n in names}, torch.randn(4, 2), batch_sizes=(1,), runs=20, warmup=1)
    timed = calls[len(names) :]  # after one warm-up call of each
    pairs = [timed[i : i + 2] for i in range(0, len(timed), 2)]
    assert len(pairs) == 20 * len(names) and all(first == second for first, second in pairs)
    rounds = [[pair[0] for pair in pairs[i : i + len(names)]] for i in range(0, len(pairs), len(names))]
    assert all(sorted(order) == names for order in rounds)  # every model once per round
    predecessors: dict[str, set[str]] = {name: set() for name in names}  # who ran right before
    for order in rounds:
        for k in range(1, len(names)):
            predecessors[order[k]].add(order[k - 1])
    assert all(len(before) > 1 for before in predecessors.values())


def test_an_onnx_runtime_session_is_timed_through_its_own_call(tmp_path: Path) -> None:
    # a server calls the session with numpy arrays: the wrapper's tensor conversions are not timed
    model = mlp(width=8).eval()
    export_onnx(model, torch.randn(4, 16), tmp_path / "m.onnx")
    runtime = OnnxModule(tmp_path / "m.onnx")
    inputs = torch.randn(3, 16)
    (logits,) = served_call(runtime, inputs)()  # type: ignore[misc]
    assert torch.allclose(torch.from_numpy(logits), model(inputs), atol=1e-5)
    forwarded: list[int] = []
    runtime.register_forward_hook(lambda *_: forwarded.append(1))
    timings = compare_latency({"onnx": runtime}, inputs, batch_sizes=(1,), runs=5, warmup=1)
    assert timings["onnx"]["batch1P50"] > 0 and not forwarded  # timed without the module's forward
    assert served_call(model, inputs)().shape == (3, 4)  # a PyTorch model is timed as it is called


def _result(runtime: str, b1: float, b32: float, within: bool, method: str | None = None) -> RuntimeResult:
    candidate = Candidate(runtime, nn.Identity(), nn.Identity(), "x", method)
    return RuntimeResult(
        candidate, latency={"batch1P50": b1, "batch32P50": b32}, within_budget=within, validation=0.9
    )


def test_auto_ships_the_fastest_runtime_within_the_budget() -> None:
    results = [
        _result("eager", 2.0, 20.0, True),
        _result("compiled", 0.5, 5.0, False),
        _result("onnx", 1.0, 6.0, True),
    ]
    chosen, reason = choose(results, "auto")
    assert chosen.runtime == "onnx" and "fastest" in reason  # compiled is faster but over budget
    assert choose(results, "compiled")[0].runtime == "compiled"  # an explicit runtime is honoured
    broken = RuntimeResult(Candidate("onnx", None, None, "", error="export failed"), error="export failed")
    chosen, reason = choose([results[0], broken], "onnx")
    assert chosen.runtime == "eager" and "export failed" in reason


def test_auto_ships_the_fastest_runtime_at_the_serving_batch_size_when_one_is_set() -> None:
    # compiled wins batch 1 by far, onnx batch 256: without a serving size the geometric mean of
    # batch 1 and 32 picks compiled, with spec.export.batchSize 256 onnx ships
    eager = _result("eager", 2.0, 20.0, True)
    compiled, onnx = _result("compiled", 0.2, 8.0, True), _result("onnx", 1.0, 6.0, True)
    for result, latency in ((eager, 160.0), (compiled, 70.0), (onnx, 45.0)):
        result.latency["batch256P50"] = latency
    assert choose([eager, compiled, onnx], "auto")[0].runtime == "compiled"
    chosen, reason = choose([eager, compiled, onnx], "auto", serving_batch=256)
    assert chosen.runtime == "onnx" and reason.endswith("at batch 256")
    onnx.baseline_latency = {"batch1P50": 2.0, "batch32P50": 12.0, "batch256P50": 90.0}
    assert onnx.speedups() == {1: 2.0, 32: 2.0, 256: 2.0}
    assert batch_sizes(None) == (1, 32) and batch_sizes(256) == (1, 32, 256) and batch_sizes(32) == (1, 32)


def test_each_runtime_offers_its_int8_and_its_float_form_and_the_faster_one_ships() -> None:
    # a tiny model: ONNX Runtime's Q/DQ nodes cost more than int8 saves at batch 1, while at batch
    # 256 int8 is ahead; eager's int8 (no int8 kernels) is slower than its float model everywhere
    eager_int8, eager_float = _result("eager", 2.0, 20.0, True, "dynamic"), _result("eager", 0.5, 8.0, True)
    onnx_int8, onnx_float = _result("onnx", 0.04, 0.9, True, "dynamic"), _result("onnx", 0.03, 1.2, True)
    for result, latency in ((eager_int8, 150.0), (eager_float, 60.0), (onnx_int8, 20.0), (onnx_float, 31.0)):
        result.latency["batch256P50"] = latency
    results = [eager_int8, eager_float, onnx_int8, onnx_float]
    assert choose(results, "auto", serving_batch=1)[0] is onnx_float
    assert choose(results, "auto", serving_batch=256)[0] is onnx_int8
    chosen, reason = choose(results, "eager")
    assert (
        chosen is eager_float and reason == "eager as requested, its fastest form within the accuracy budget"
    )
    onnx_float.within_budget = False  # over the budget: never shipped, however fast
    assert choose(results, "auto", serving_batch=1)[0] is onnx_int8


def test_onnx_gentler_forms_end_at_the_float_model() -> None:
    from optikube_trainer.runtimes.onnx_quantize import gentler_forms

    assert gentler_forms("static") == gentler_forms("dynamic") == ["weightOnly", None]
    assert gentler_forms("weightOnly") == [None]
    assert gentler_forms(None) == []  # the float model has nothing gentler


def test_a_shipped_model_slower_than_its_baseline_in_its_runtime_is_noted() -> None:
    faster = _result("onnx", 1.0, 6.0, True)
    faster.baseline_latency = {"batch1P50": 1.5, "batch32P50": 12.0}
    assert slower_than_baseline(faster) is None
    slower = _result("onnx", 1.0, 6.0, True)
    slower.baseline_latency = {"batch1P50": 0.88, "batch32P50": 7.2}
    note = slower_than_baseline(slower)
    assert note is not None and "batch 1 (0.88x)" in note and "batch 32" not in note
    assert note.startswith("the optimized model is slower in onnx") and "did not pay off" in note


@pytest.mark.slow  # inductor compiles for ~10 s
def test_compiled_runtime_runs_a_pt2e_int8_cnn() -> None:
    from optikube_trainer.quantization.static import quantize_static_int8
    from optikube_trainer.runtimes.compiled import compile_for_cpu

    images, _ = _images()
    model, _ = quantize_static_int8(cnn(channels=16).eval(), images[:8], [images[:64]])
    with torch.inference_mode():
        expected = model(images[:4])
        assert torch.allclose(compile_for_cpu(model)(images[:4]), expected, atol=0.05)


@pytest.mark.slow  # inductor compiles for ~10 s
def test_compiled_runtime_runs_a_torchao_int8_model() -> None:
    from optikube_trainer.quantization import QuantizationConfig, quantize
    from optikube_trainer.runtimes.compiled import compile_for_cpu

    inputs = torch.randn(64, 16)
    model, _ = quantize(
        mlp(width=32).eval(), QuantizationConfig(method="weightOnly"), example_inputs=inputs[:2]
    )
    with torch.inference_mode():
        expected = model(inputs[:4])
        compiled = compile_for_cpu(model)
        assert torch.allclose(compiled(inputs[:4]), expected, atol=1e-3)
