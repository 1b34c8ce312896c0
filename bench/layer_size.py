"""Unzipped size of the shared layer as Lambda gets it (arm64 wheels), without boto3/botocore/s3transfer,
which the Python runtime already provides."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "python_dateutil", "urllib3", "six")


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def measure() -> dict[str, int]:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "python"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
                str(target),
                "--platform",
                "manylinux2014_aarch64",
                "--only-binary=:all:",
                "--python-version",
                "3.13",
                "-r",
                str(ROOT / "layers/common/requirements.txt"),
            ],
            check=True,
        )
        shutil.copytree(ROOT / "layers/common/gateway", target / "gateway")
        total = _size(target)
        provided = sum(_size(p) for p in target.iterdir() if p.name.split("-")[0].lower().replace("-", "_") in PROVIDED)
        packages = sorted(
            ((p.name, _size(p)) for p in target.iterdir() if p.is_dir() and not p.name.endswith(".dist-info")),
            key=lambda x: -x[1],
        )
        return {
            "total": total,
            "without_runtime_provided": total - provided,
            **{f"pkg:{n}": s for n, s in packages[:8]},
        }


if __name__ == "__main__":
    for key, value in measure().items():
        print(f"{key}: {value / 1e6:.1f} MB")
