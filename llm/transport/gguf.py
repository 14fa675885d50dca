"""The GGUF file the embedded servers load: the shipped SmolLM2 Q4_1 file re-encoded once as Q8_0.

llama.cpp reads Q4_1 prompts slowly on this CPU, and the embedded main job spends most of its time reading
prompts (about 220 prompt tokens and 20 generated tokens a request). On this 2-core AVX-512 machine, one thread,
200 prompt tokens: Q4_1 5.7 ms a token, Q8_0 2.6, F16 3.0, Q4_0 1.9. Q8_0 is kept: by construction its 8-bit
steps hold each of a Q4_1 block's 16 levels to within 1/34 of the step between them, so the weights stay those of
the shipped file; Q4_0 would move every weight by up to half a step (a different model). The file is made by
llama.cpp's own quantizer (`llama_model_quantize`, allow_requantize) in about 1 s, under the cache directory,
named by the shipped file's content hash, written whole or not at all (a temp folder beside it, then a rename),
and found again by every later run.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common.hashing import hexdigest

SERVED_TYPE = "Q8_0"


def content_key(path: Path) -> str:
    """The first 12 hex digits of the SHA-256 of a file's bytes."""
    return hexdigest(path.read_bytes())[:12]


# the conversion, in a child process so that llama.cpp's per-tensor log lines stay out of the user's terminal
_CONVERT = (
    "import ctypes, sys\nimport llama_cpp\n"
    "p = llama_cpp.llama_model_quantize_default_params()\n"
    "p.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0\np.allow_requantize = True\np.nthread = 1\n"
    "sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(p)))\n"
)


def requantized(source: Path, cache_dir: Path) -> Path:
    """`source` as Q8_0 under `cache_dir` (made now if it is not there yet); raises OSError when it cannot be
    written and RuntimeError when llama.cpp fails to convert it."""
    target = cache_dir / f"{source.stem}.{SERVED_TYPE}.{content_key(source)}.gguf"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".requantize-") as tmp:
        made = Path(tmp) / target.name
        proc = subprocess.run([sys.executable, "-c", _CONVERT, str(source), str(made)], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, errors="replace")
        if proc.returncode != 0 or not made.is_file():
            tail = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
            raise RuntimeError(f"llama.cpp could not re-encode {source} as {SERVED_TYPE}: {tail[0]}")
        os.replace(made, target)
    return target
