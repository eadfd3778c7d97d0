"""Parsers of the device tools' output (trtexec, tegrastats, benchmark_model, nvpmodel, jetson_clocks, sysfs)."""

from __future__ import annotations

import json

import pytest

from devices.android.benchmark_model import latency_stats as bm_latency
from devices.android.benchmark_model import parse_benchmark_model
from devices.jetson import system
from devices.jetson.tegrastats import energy_per_frame_mj, parse_line, summarize
from devices.jetson.trtexec import latency_stats, parse_export_profile, parse_export_times, parse_trtexec
from runtimes.core.errors import UserError

TRTEXEC = """\
&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # trtexec --loadEngine=dn.engine --shapes=image:1x3x720x1280
[01/15/2025-10:00:00] [I] TensorRT version: 10.3.0
[01/15/2025-10:00:01] [I] Engine built in 41.2 sec.
[01/15/2025-10:00:05] [I] === Performance summary ===
[01/15/2025-10:00:05] [I] Throughput: 84.3291 qps
[01/15/2025-10:00:05] [I] Latency: min = 11.6416 ms, max = 12.9853 ms, mean = 11.8345 ms, median = 11.8101 ms, \
percentile(90%) = 11.9602 ms, percentile(95%) = 12.0303 ms, percentile(99%) = 12.6711 ms
[01/15/2025-10:00:05] [I] Enqueue Time: min = 0.31 ms, max = 0.52 ms, mean = 0.34 ms, median = 0.33 ms, \
percentile(90%) = 0.36 ms, percentile(95%) = 0.38 ms, percentile(99%) = 0.47 ms
[01/15/2025-10:00:05] [I] H2D Latency: min = 0.6 ms, max = 0.8 ms, mean = 0.65 ms, median = 0.64 ms, \
percentile(90%) = 0.7 ms, percentile(95%) = 0.71 ms, percentile(99%) = 0.78 ms
[01/15/2025-10:00:05] [I] GPU Compute Time: min = 10.2 ms, max = 11.4 ms, mean = 10.4 ms, median = 10.38 ms, \
percentile(90%) = 10.5 ms, percentile(95%) = 10.6 ms, percentile(99%) = 11.1 ms
[01/15/2025-10:00:05] [I] D2H Latency: min = 0.55 ms, max = 0.7 ms, mean = 0.58 ms, median = 0.57 ms, \
percentile(90%) = 0.6 ms, percentile(95%) = 0.62 ms, percentile(99%) = 0.68 ms
[01/15/2025-10:00:05] [I] Total Host Walltime: 3.02 s
&&&& PASSED TensorRT.trtexec [TensorRT v100300] # trtexec --loadEngine=dn.engine
"""

TEGRA_ORIN = ("01-15-2025 10:00:00 RAM 2448/7620MB (lfb 2x4MB) SWAP 0/3810MB (cached 0MB) "
              "CPU [12%@1510,8%@1510,3%@1510,0%@1510,off,off] EMC_FREQ 14%@2133 GR3D_FREQ 45%@[624] "
              "NVENC off NVDEC off VIC off APE 200 cpu@47.2C soc2@44.5C soc0@45C gpu@45.5C tj@48C soc1@44.75C "
              "VDD_IN 4825mW/4825mW VDD_CPU_GPU_CV 1012mW/1012mW VDD_SOC 1449mW/1449mW")
TEGRA_ORIN_2 = TEGRA_ORIN.replace("VDD_IN 4825mW/4825mW", "VDD_IN 6025mW/5425mW").replace("gpu@45.5C", "gpu@49.5C")
TEGRA_XAVIER = ("RAM 3100/15822MB (lfb 3x4MB) CPU [5%@1190,3%@1190] EMC_FREQ 0% GR3D_FREQ 99% AO@38C GPU@45.5C "
                "PMIC@50C POM_5V_IN 7500/7000 POM_5V_GPU 3100/2900 POM_5V_CPU 900/880")

BENCHMARK_MODEL = """\
INFO: STARTING!
INFO: Graph: [/data/local/tmp/levelres/dn.tflite]
INFO: Num threads: [4]
INFO: Use xnnpack: [1]
INFO: Loaded model /data/local/tmp/levelres/dn.tflite
INFO: The input model file size (MB): 1.41
INFO: Initialized session in 25.341ms.
INFO: Running benchmark for at least 5 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=12 first=78345 curr=41000 min=40500 max=78345 avg=44210.5 std=10200

INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=50 first=40900 curr=40100 min=39800 max=43100 avg=40612.3 std=650

INFO: Inference timings in us: Init: 25341, First inference: 78345, Warmup (avg): 44210.5, Inference (avg): 40612.3
INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual \
memory footprint of the model at runtime. Take the information at your discretion.
INFO: Memory footprint delta from the start of the tool (MB): init=3.05078 overall=21.5
INFO: Overall peak memory footprint (MB) via periodic monitoring: 27.6172
INFO: Memory status at the end of exeution:
"""


def test_trtexec_summary():
    s = parse_trtexec(TRTEXEC)
    assert s["passed"] is True and s["version"] == "10.3.0" and s["build_s"] == pytest.approx(41.2)
    assert s["throughput_qps"] == pytest.approx(84.3291)
    assert s["latency"]["median"] == pytest.approx(11.8101) and s["latency"]["p99"] == pytest.approx(12.6711)
    assert s["gpu_compute_time"]["mean"] == pytest.approx(10.4) and s["h2d_latency"]["p95"] == pytest.approx(0.71)
    stats = latency_stats(s)
    assert stats == {"min_ms": 11.6416, "max_ms": 12.9853, "mean_ms": 11.8345, "p50_ms": 11.8101,
                     "p90_ms": 11.9602, "p99_ms": 12.6711}


def _times_json(path, latencies, start=0.0, step=10.0):
    """trtexec --exportTimes records (its keys, as sampleReporting.cpp writes them)."""
    recs = []
    for i, lat in enumerate(latencies):
        t = start + i * step
        recs.append({"startEnqMs": t, "endEnqMs": t + 0.1, "startH2dMs": t, "endH2dMs": t + 0.2,
                     "startComputeMs": t + 0.2, "endComputeMs": t + lat - 0.2, "startD2hMs": t + lat - 0.2,
                     "endD2hMs": t + lat, "h2dMs": 0.2, "computeMs": lat - 0.4, "d2hMs": 0.2, "latencyMs": lat,
                     "endToEndMs": lat + 0.1})
    path.write_text(json.dumps(recs))
    return path


def test_trtexec_export_times_json(tmp_path):
    # 20 warm-up inferences start before 200 ms (dropped, as trtexec does), then 10 timed ones
    path = _times_json(tmp_path / "t.times.json", [50.0] * 20 + [float(v) for v in range(1, 11)])
    stats = parse_export_times(path, warmup_ms=200)
    assert stats["n"] == 10 and stats["min_ms"] == 1.0 and stats["max_ms"] == 10.0
    assert stats["mean_ms"] == pytest.approx(5.5) and stats["p50_ms"] == 6.0 and stats["p90_ms"] == 10.0
    assert parse_export_times(tmp_path / "absent.json") is None  # the caller falls back to the text summary
    (tmp_path / "bad.json").write_text("[{")
    assert parse_export_times(tmp_path / "bad.json") is None and parse_export_times(_times_json(
        tmp_path / "empty.json", [])) is None


def test_trtexec_export_profile_json(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('[\n  { "count" : 12 }\n, { "name" : "conv1", "timeMs" : 12.0, "averageMs" : 1.0, '
                    '"percentage" : 20.0 }\n, { "name" : "conv2 + relu", "timeMs" : 48.0, "averageMs" : 4.0, '
                    '"percentage" : 80.0 }\n]\n')
    top = parse_export_profile(path)
    assert [r["name"] for r in top] == ["conv2 + relu", "conv1"] and top[0]["percent"] == 80.0
    assert parse_export_profile(tmp_path / "absent.json") is None


def test_trtexec_tensorrt8_banner():
    assert parse_trtexec("&&&& RUNNING TensorRT.trtexec [TensorRT v8502] # trtexec")["version"] == "8.5.2"


def test_trtexec_failure_is_a_user_error():
    s = parse_trtexec("[E] Error[4]: could not parse\n&&&& FAILED TensorRT.trtexec [TensorRT v100300]\n")
    assert s["passed"] is False
    with pytest.raises(UserError, match="FAILED"):
        latency_stats(s)


def test_tegrastats_orin_line():
    t = parse_line(TEGRA_ORIN)
    assert t["ram_mb"] == 2448 and t["ram_total_mb"] == 7620 and t["swap_mb"] == 0
    assert t["cpu_load"] == [12, 8, 3, 0] and t["cpu_mhz"] == [1510] * 4
    assert t["gpu_load"] == 45 and t["gpu_mhz"] == 624 and t["emc_load"] == 14
    assert t["temperature_c"]["gpu"] == 45.5 and t["temperature_c"]["tj"] == 48 and "cpu" in t["temperature_c"]
    assert t["power_mw"] == {"VDD_IN": 4825, "VDD_CPU_GPU_CV": 1012, "VDD_SOC": 1449}
    assert "RAM" not in t["power_mw"] and "SWAP" not in t["power_mw"]


def test_tegrastats_older_format_without_units():
    t = parse_line(TEGRA_XAVIER)
    assert t["power_mw"] == {"POM_5V_IN": 7500, "POM_5V_GPU": 3100, "POM_5V_CPU": 900}
    assert t["temperature_c"]["GPU"] == 45.5 and t["gpu_load"] == 99 and t["gpu_mhz"] is None


def test_tegrastats_summary_and_energy():
    s = summarize([parse_line(TEGRA_ORIN), parse_line(TEGRA_ORIN_2), parse_line("")], interval_ms=100)
    assert s["n_samples"] == 2
    assert s["total_power_mw"] == {"mean": 5425.0, "max": 6025.0}
    assert s["temperature_c"]["gpu"] == {"mean": 47.5, "max": 49.5}
    assert s["power_mw"]["VDD_SOC"]["mean"] == 1449
    assert energy_per_frame_mj(s, 10.0) == pytest.approx(54.25)  # 5.425 W x 10 ms
    assert summarize([])["n_samples"] == 0
    xs = summarize([parse_line(TEGRA_XAVIER)])
    assert xs["total_power_mw"]["mean"] == 7500  # the input rail, not the sum


def test_benchmark_model_output():
    p = parse_benchmark_model(BENCHMARK_MODEL)
    assert p["init_us"] == 25341 and p["first_us"] == 78345 and p["warmup_avg_us"] == 44210.5
    assert p["inference_avg_us"] == 40612.3
    assert p["runs"]["count"] == 50 and p["runs"]["min"] == 39800 and p["warmup"]["count"] == 12
    assert p["memory_init_mb"] == pytest.approx(3.05078) and p["memory_overall_mb"] == 21.5
    assert p["peak_memory_mb"] == pytest.approx(27.6172) and p["model_mb"] == 1.41
    stats = bm_latency(p, warmup=5)
    assert stats["mean_ms"] == pytest.approx(40.6123) and stats["min_ms"] == 39.8 and stats["max_ms"] == 43.1
    assert stats["n"] == 50 and stats["p50_ms"] is None and stats["first_ms"] == pytest.approx(78.345)


def test_benchmark_model_failure():
    with pytest.raises(UserError, match="Failed to apply GPU delegate"):
        parse_benchmark_model("INFO: Loaded model x\nERROR: Failed to apply GPU delegate.\n")
    assert parse_trtexec("&&&& RUNNING TensorRT.trtexec [TensorRT v100300]")["version"] == "10.3.0"


def test_nvpmodel_and_clocks():
    assert system.parse_nvpmodel("NV Power Mode: 15W\n0\n") == {"name": "15W", "id": 0}
    text = ("SOC family:tegra234  Machine:NVIDIA Jetson Orin Nano Developer Kit\nOnline CPUs: 0-5\n"
            "cpu0: Online=1 Governor=schedutil MinFreq=729600 MaxFreq=1510400 CurrentFreq=1510400 IdleStates: WFI=1\n"
            "cpu1: Online=1 Governor=schedutil MinFreq=729600 MaxFreq=1510400 CurrentFreq=729600 IdleStates: WFI=1\n"
            "GPU MinFreq=306000000 MaxFreq=624750000 CurrentFreq=624750000\n"
            "EMC MinFreq=204000000 MaxFreq=2133000000 CurrentFreq=2133000000 FreqOverride=0\nNV Power Mode: 15W\n")
    c = system.parse_clocks_show(text)
    assert [x["cur_mhz"] for x in c["cpu"]] == [1510.4, 729.6] and c["cpu"][0]["governor"] == "schedutil"
    assert c["gpu"]["cur_mhz"] == pytest.approx(624.75) and c["emc"]["max_mhz"] == 2133


def test_sysfs_clocks(tmp_path):
    cpu = tmp_path / "devices/system/cpu/cpu0/cpufreq"
    cpu.mkdir(parents=True)
    (cpu / "scaling_cur_freq").write_text("1510400\n")
    (cpu / "scaling_max_freq").write_text("1510400\n")
    gpu = tmp_path / "class/devfreq/17000000.gpu"
    gpu.mkdir(parents=True)
    (gpu / "cur_freq").write_text("624750000\n")
    (gpu / "max_freq").write_text("624750000\n")
    c = system.sysfs_clocks(tmp_path)
    assert c["cpu"] == [{"cpu": 0, "cur_mhz": 1510.4, "max_mhz": 1510.4}]
    assert c["devfreq"]["17000000.gpu"]["cur_mhz"] == pytest.approx(624.75)
