"""The scheduler examples: the Kubernetes Indexed Job validated by kubernetes-validate (strict)
against its newest Kubernetes schema, and every Slurm script at least parsed by bash."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_indexed_job_validates_strictly_against_a_current_kubernetes():
    kv = pytest.importorskip("kubernetes_validate", reason="pip install -e .[test] installs kubernetes-validate")
    import yaml

    version = kv.latest_version()
    docs = list(yaml.safe_load_all((EXAMPLES / "k8s" / "indexed-job.yaml").read_text()))
    assert docs and all(kv.validate(doc, version, strict=True) for doc in docs)
    spec = docs[0]["spec"]
    assert spec["completionMode"] == "Indexed" and spec["backoffLimitPerIndex"] == 1
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    bad = {**docs[0], "spec": {**spec, "completionMode": "Indexed", "backoffLimitPerIndx": 1}}
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, version, strict=True)  # strict mode refuses an unknown (misspelt) field


@pytest.mark.parametrize("script", sorted(p.name for p in (EXAMPLES / "slurm").glob("*.sbatch")))
def test_slurm_examples_parse(script):
    text = (EXAMPLES / "slurm" / script).read_text()
    assert text.startswith("#!/bin/bash") and "#SBATCH" in text
    assert subprocess.run(["bash", "-n", str(EXAMPLES / "slurm" / script)]).returncode == 0
