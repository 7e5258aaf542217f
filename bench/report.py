"""The readable table for happyhouse-bench (the JSON holds the same figures)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from .stages import STAGE_HELP, STAGES


def _ms(stats: Optional[Dict[str, Any]]) -> str:
    if not stats:
        return f"{'n/a':>9} {'n/a':>9} {'n/a':>9}"
    cpu = stats.get("cpu_median")
    return f"{stats['median']:9.3f} {stats['p95']:9.3f} {_num(cpu, '{:9.3f}', '      n/a')}"


def _num(value: Any, fmt: str = "{:.2f}", none: str = "n/a") -> str:
    return none if value is None else fmt.format(value)


def table(result: Dict[str, Any]) -> str:
    m = result["machine"]
    lines: List[str] = [
        f"happyhouse-bench on {m['cpu']} ({m['cpus']} CPUs, pinned to {m['pinned_to']}, "
        f"SIMD {' '.join(m['simd']) or '-'}, load {m['load_avg']})",
        f"python {m['python']}  numpy {m['numpy']}  opencv {m['opencv']}  "
        f"ai-edge-litert {m['ai_edge_litert']}  tensorflow {m['tensorflow']}  keras {m['keras']}",
        f"bundle {result['bundle']['name']} ({result['bundle']['sha256']}), frames "
        f"{result['config']['data']} at 640x480, interpreter threads {result['config']['threads']}",
        "face gate " + ", ".join(f"{k} {v}" for k, v in result.get("face_gate", {}).items())
        + f" (config {result['config'].get('daemon_config') or 'built-in defaults'})",
        "",
        f"{'stage (ms, wall clock; cpu med = CPU time)':52} {'median':>9} {'p95':>9} {'cpu med':>9}",
    ]
    stages = result.get("stages_ms") or {}
    for stage in STAGES:
        lines.append(f"{stage + ': ' + STAGE_HELP[stage]:52.52} {_ms(stages.get(stage))}")
    lines.append(f"{'sum of stages, per frame':52} {_ms(stages.get('total'))}")
    if stages.get("frames"):
        lines.append(f"  faces found in {stages['faces']}/{stages['frames']} frames "
                     f"({stages['face_rate']:.0%}); happy {stages['happy']}")
    lines += [f"{'whole pipeline per frame':52} {_ms(result.get('pipeline_ms'))}",
              f"{'whole pipeline throughput (fps)':52} {_num(result.get('fps'), '{:9.1f}', '      n/a')}"
              f" {'':9} {_num(result.get('fps_cpu'), '{:9.1f}', '      n/a')}",
              f"  [{result.get('pipeline_impl') or 'n/a'}]", ""]
    inv = result.get("invoke_ms") or {}
    models = result.get("models") or {}
    lines.append(f"{'model invoke, one 64x64 image (ms)':52} {'median':>9} {'p95':>9} {'cpu med':>9}")
    for key, label in (("int8", "int8 TFLite (shipped bundle)"), ("float32", "float32 TFLite (same net)"),
                       ("keras", "Keras predict, one image (tutorial way)"), ("keras_call", "Keras model(x) call")):
        lines.append(f"{label:52} {_ms(inv.get(key))}")
    if models.get("keras_note"):
        lines.append(f"  Keras model: {models.get('keras_model') or 'none'} ({models['keras_note']})")
    r = result.get("ratios") or {}
    lines += [f"  float32/int8 {_num(r.get('int8_speedup_cpu'))}x (wall {_num(r.get('int8_speedup'))}x)"
              f"   Keras predict/int8 invoke {_num(r.get('keras_over_int8_cpu'), '{:.0f}')}x "
              f"(wall {_num(r.get('keras_over_int8'), '{:.0f}')}x)   Keras predict/whole pipeline "
              f"{_num(r.get('keras_over_pipeline_cpu'), '{:.0f}')}x "
              f"(wall {_num(r.get('keras_over_pipeline'), '{:.0f}')}x)", ""]
    d = result.get("daemon") or {}
    age = result.get("frame_age_ms") or {}
    lines += [f"daemon READY=1 after {_num(result.get('ready_s'), '{:.3f}')} s "
              f"({_num(d.get('ready_cpu_s'), '{:.2f}')} s CPU); RSS after warm-up "
              f"{_num(result.get('rss_mb'), '{:.1f}')} MB (max {_num(d.get('rss_max_mb'), '{:.1f}')}, "
              f"peak {_num(d.get('hwm_mb'), '{:.1f}')}); TensorFlow mapped: "
              f"{_num(d.get('tensorflow_loaded'), '{}')}; exit {_num(d.get('exit_status'), '{}')}",
              f"  RSS = {_num(d.get('rss_anon_mb'), '{:.1f}')} MB private (anonymous) + "
              f"{_num(d.get('rss_file_mb'), '{:.1f}')} MB file-backed (shared libraries)",
              f"frame age at decision ({_num(age.get('source_fps'), '{:g}')} fps source): median "
              f"{_num(age.get('median'), '{:.2f}')} ms, p95 {_num(age.get('p95'), '{:.2f}')} ms "
              f"over {age.get('decided', 0)} decisions, {age.get('dropped', 0)} frames dropped", ""]
    page = result.get("page") or {}
    if page and not page.get("error"):
        lines += [f"door page: decisions {_num(page.get('rate_off_fps'), '{:.1f}')}/s idle, "
                  f"{_num(page.get('rate_loaded_fps'), '{:.1f}')}/s with {page.get('streams')} "
                  f"live viewers + {page.get('stalled')} stalled + a slowloris "
                  f"({_num(page.get('rate_drop_pct'), '{:.1f}')}% lower); relock "
                  f"{_num(page.get('relock_delay_off_ms'), '{:.1f}')} ms past unlock_seconds idle, "
                  f"{_num(page.get('relock_delay_loaded_ms'), '{:.1f}')} ms loaded", ""]
    lines.append("goals (timings judged on CPU time: the machine is shared; wall clock in brackets):")
    for g in result.get("goals", []):
        mark = {True: "PASS", False: "FAIL", None: "----"}[g["pass"]]
        wall = f" [wall {_num(g['wall_value'], '{:g}')}]" if "wall_value" in g else ""
        lines.append(f"  {mark}  {g['goal']}: {_num(g['value'], '{:g}')}{wall} "
                     f"(target {_num(g['target'], '{:g}')})")
    for note in result.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"
