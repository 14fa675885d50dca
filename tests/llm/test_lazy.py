"""`llm`'s public names are imported on first use: a transport module loads no run API."""
import subprocess
import sys


def test_importing_the_transport_loads_no_run_api():
    code = ("import sys, llm.transport.limiter, llm.transport.embedded\n"
            "heavy = [m for m in ('llm.api', 'llm.api.run', 'llm.engine.texts', 'llm.api.config') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "import llm\nassert llm.Run.__module__ == 'llm.api.run' and 'llm.api.run' in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
