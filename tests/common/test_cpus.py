"""common.cpus: the usable cores (the affinity mask first) and AMX, read from the kernel's CPU flags."""
from common.cpus import has_amx


def test_amx_is_read_from_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile amx_int8\n")
    assert has_amx(str(info))
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\nbugs\t\t: amx_tile_in_bugs_line\n")
    assert not has_amx(str(info))
    assert not has_amx(str(tmp_path / "missing"))


def test_the_affinity_mask_decides_the_usable_cores(monkeypatch):
    import os

    from common.cpus import usable_cores

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)  # the affinity mask wins over the machine's count
    assert usable_cores() == 4
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert usable_cores() == 64  # without one, the CPU count decides
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert usable_cores() == 1
