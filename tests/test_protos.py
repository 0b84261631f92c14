import subprocess
import sys


def test_generated_grpc_code_is_up_to_date():
    """Fails when protos/ changed without `python -m atom.protogen`."""
    out = subprocess.run([sys.executable, "-m", "atom.protogen", "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
