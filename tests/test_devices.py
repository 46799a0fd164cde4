"""The device policy (pivotrl.devices): what auto / cpu / cuda / cuda:N resolve to with and without GPUs, the
generation dtype per device, and that every stage takes the device it is given."""

from __future__ import annotations

import pytest
import torch

from pivotrl.devices import DeviceError, generation_dtype, parse_dtype, resolve_device


@pytest.fixture
def gpus(monkeypatch):
    """Pretend this machine has ``n`` CUDA GPUs (only torch's device queries are replaced)."""

    def fake(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)

    monkeypatch.delenv("LOCAL_RANK", raising=False)
    return fake


def test_cpu_machine(gpus):
    gpus(0)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    for asked in ("cuda", "cuda:0"):
        with pytest.raises(DeviceError, match="no CUDA GPU.*--device cpu or auto"):
            resolve_device(asked)


def test_gpu_machine(gpus, monkeypatch):
    gpus(2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device(torch.device("cuda", 1)) == torch.device("cuda", 1)
    assert resolve_device("cpu") == torch.device("cpu")  # asked for explicitly: the CPU, GPU or not
    with pytest.raises(DeviceError, match="has 2 GPU.*cuda:0 to cuda:1"):
        resolve_device("cuda:2")
    # under accelerate launch / torchrun each process takes the GPU of its local rank
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("auto") == torch.device("cuda", 1)
    assert resolve_device("cuda") == torch.device("cuda", 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)  # an explicit index wins


def test_malformed_specs_name_the_choices(gpus):
    gpus(1)
    for bad in ("gpu", "cuda:x", "cuda:-1", "tpu", ""):
        with pytest.raises(DeviceError, match="expected auto .* cpu \\| cuda \\| cuda:N"):
            resolve_device(bad)


def test_generation_dtype_follows_the_device():
    assert generation_dtype("auto", torch.device("cpu")) == torch.float32
    assert generation_dtype("auto", torch.device("cuda", 0)) == torch.bfloat16
    assert generation_dtype("auto", "cuda:1") == torch.bfloat16
    assert generation_dtype("float16", "cpu") == torch.float16  # an explicit dtype is kept anywhere
    assert parse_dtype("BF16") == torch.bfloat16 and parse_dtype("auto") == "auto"
    with pytest.raises(ValueError, match="unknown dtype 'int8'"):
        parse_dtype("int8")


def test_stages_refuse_a_missing_gpu_before_loading(gpus, tiny_folder, tmp_path):
    """Asking for a GPU on a CPU machine fails at once with the device error, in every stage."""
    from pivotrl.evaluation import EvalConfig, run_eval
    from pivotrl.models import load_model
    from pivotrl.pivot.backends import LocalPivot
    from pivotrl.translators import make_translator
    from pivotrl.rewards.compose import build_reward

    gpus(0)
    with pytest.raises(DeviceError):
        load_model(str(tiny_folder), device="cuda")
    with pytest.raises(DeviceError):
        run_eval(EvalConfig(model=str(tiny_folder), task="synthetic", langs=["en"], n=1, device="cuda:0",
                            out=str(tmp_path / "eval")), progress=False)
    with pytest.raises(DeviceError):
        _ = LocalPivot(str(tiny_folder), device="cuda").loaded
    with pytest.raises(DeviceError):
        make_translator("seq2seq:some/model", device="cuda")
    with pytest.raises(DeviceError):
        build_reward("embedding", device="cuda").component("embedding_similarity")


def test_cpu_device_is_where_models_land(tiny_folder):
    from pivotrl.models import load_model

    loaded = load_model(str(tiny_folder), dtype="auto", device="auto")
    assert {p.device.type for p in loaded.model.parameters()} == {"cpu"}


def test_q4_embedding_table_follows_the_model_to_another_device():
    """The e5 encoder's packed 4-bit word table keeps its dtypes when the model is cast but moves with it
    (checked with the meta device, which needs no GPU)."""
    from pivotrl.rewards.e5_torch import TorchE5Encoder

    encoder = TorchE5Encoder(device="cpu")
    table = encoder.model.embeddings.word_embeddings
    assert encoder.device == torch.device("cpu") and table.nibbles.device.type == "cpu"
    encoder.model.to(torch.bfloat16)
    assert table.nibbles.dtype == torch.uint8 and table.scales.dtype == torch.float32
    encoder.model.to("meta")
    assert table.nibbles.device.type == "meta" and table.scales.device.type == "meta"


def test_reward_config_carries_the_device():
    from pivotrl.rewards.compose import load_reward_config

    assert load_reward_config("hybrid").device == "auto"
    assert load_reward_config("hybrid", device="cpu").device == "cpu"
    with pytest.raises(ValueError, match="device must be a device name"):
        load_reward_config("hybrid", device="")
