"""bench/gpu_check.py, the script for a real GPU, run here at tiny sizes on the CPU through the same code."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.factories import REPO


def test_gpu_check_runs_every_pipeline_through_the_cache_without_gradio(tmp_path):
    out = tmp_path / "report.json"
    subprocess.run([sys.executable, "-m", "bench.gpu_check", "--tiny", "--work", str(tmp_path / "models"),
                    "--out", str(out)], cwd=REPO, check=True, timeout=600, capture_output=True)
    report = json.loads(out.read_text())  # the script itself asserts it never imported gradio
    assert set(report["weights_mb"]) == {"language", "clip", "text_to_image"}
    assert report["loaded_twice"] == {}
    language = report["language"]
    assert language["next_token_ms"] > 0 and language["next_token_30_batched_p95_ms"] > 0
    assert max(language["batches"]) > 1  # the 30 concurrent requests shared passes
    assert report["clip"]["clip_images_per_s"] > 0 and report["text_to_image"]["sd_turbo_1_step_ms"] > 0
    eviction = report["eviction"]
    assert eviction["first_evicted"] and eviction["within_budget"]
    assert set(report["goals"]) == {"next_token_ms", "sd_turbo_1_step_ms", "clip_images_per_s"}
