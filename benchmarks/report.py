"""Render results/benchmarks/README.md from the suite JSON files (one table per suite and device)."""
from __future__ import annotations

import json
from pathlib import Path

from ssml_lib.io import atomic_write_text


def _f(v, fmt="{:.3g}") -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return fmt.format(v)
    return str(v)


def _op(name: str, width: int = 60) -> str:
    """A kernel's name without its template arguments and signature, at most ``width`` characters."""
    short = name.split("<")[0].split("(")[0].strip() or name
    return short if len(short) <= width else short[: width - 1] + "…"


def overhead_plot(out_dir: Path) -> Path | None:
    """``overhead.png``: each method case's overhead ratio per device (eager and compiled) against its target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = []
    for path in sorted(Path(out_dir).glob("methods_*.json")):
        if "tiny" in path.name:
            continue
        rec = json.loads(path.read_text())
        params = rec["provenance"]["params"]
        label = (f"{'GPU' if 'cuda' in path.name else 'CPU'}, {params.get('profile', '?')} profile"
                 f"{', compiled' if params.get('compile') else ''}")
        series.append((label, {r["case"]: r for r in rec["rows"]}))
    if not series:
        return None
    cases = list(dict.fromkeys(c for _, rows in series for c in rows))
    fig, ax = plt.subplots(figsize=(1.3 * len(cases) + 2, 3.6))
    width = 0.8 / len(series)
    for i, (label, rows) in enumerate(series):
        xs = [j + i * width for j, c in enumerate(cases) if c in rows]
        ax.bar(xs, [rows[c]["overhead"] for c in cases if c in rows], width, label=label)
    labelled = False
    for j, c in enumerate(cases):
        target = next((rows[c]["target"] for _, rows in series if c in rows), None)
        if target:
            ax.hlines(target, j - width / 2, j + 0.8 - width / 2, colors="k", linestyles="--",
                      label=None if labelled else "target (docs/speed.md)")
            labelled = True
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(cases))], cases, rotation=20, ha="right")
    ax.axhline(1.0, color="grey", lw=0.5)
    ax.set_ylabel("step time / backbone-only step")
    ax.set_title("Method overhead: a method's training step over the backbone-only step")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    path = Path(out_dir) / "overhead.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _methods(rows) -> list[str]:
    out = ["| case | backbone | batch (images) | px | dtype | method step ms | backbone step ms | images/s | "
           "overhead | target | meets | compiled | host syncs/step |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['case']} | {r['backbone']} | {r['batch_items']} ({r['images_per_step']}) | "
                   f"{r['resolution']} | {r['dtype']} | {r['step_s'] * 1e3:.1f} | {r['backbone_step_s'] * 1e3:.1f} | "
                   f"{r['images_per_s']:.1f} | {r['overhead']:.3f} | {_f(r['target'])} | "
                   f"{'–' if r['meets_target'] is None else ('yes' if r['meets_target'] else '**no**')} | "
                   f"{'yes' if r.get('compiled') else 'no'} | {_f(r.get('host_syncs_per_step'))} |")
    for r in rows:
        if r.get("op_profile"):
            out += ["", f"Where the time goes in `{r['case']}` (top ops by self time per step; method step, then "
                        "backbone-only step):", "", "| op | method ms/step | share | | op (backbone) | ms/step |",
                    "|---|---|---|---|---|---|"]
            for a, b in zip(r["op_profile"][:8], r["backbone_op_profile"][:8]):
                out.append(f"| {_op(a['op'])} | {a['self_ms_per_step']:.1f} | {a['share']:.0%} | | {_op(b['op'])} | "
                           f"{b['self_ms_per_step']:.1f} |")
    return out


def _input(rows) -> list[str]:
    out = ["| pipeline | images/s | GPU idle fraction | input-stage fraction | training-step fraction |",
           "|---|---|---|---|---|"]
    for r in rows:
        idle, stage = r.get("gpu_idle_fraction"), r.get("gpu_decode_fraction")
        step = 1 - idle - stage if isinstance(idle, float) and isinstance(stage, float) else None
        out.append(f"| {r['pipeline']} | {_f(r.get('images_per_s'), '{:.1f}')} | {_f(idle, '{:.3f}')} | "
                   f"{_f(stage, '{:.3f}')} | {_f(step, '{:.3f}')} |")
    if any("gpu_decode_fraction" in r for r in rows):
        out += ["", "Fractions of the training loop's wall time, from CUDA events on the GPU stream: the input stage "
                "(PIL path: host-side concatenation and the host-to-device copy; device path: nvJPEG decoding, "
                "crop-resize and normalisation, with their kernel launches), the training step (forward, loss, "
                "backward, SGD), and idle (the GPU waiting for the loader)."]
    return out


def _retrieval(rows) -> list[str]:
    out = ["| task | N x dim | k | back end | seconds | peak MiB | note |", "|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["task"], r["backend"], r["n"])):
        note = r.get("note", "")
        if r["task"] == "recall_at_k":
            note = note or "R@" + ", ".join(f"{k}={v:.4f}" for k, v in r["value"].items())
        elif r["task"] == "nmi":
            note = f"NMI={r['value']:.4f}, {r.get('clusters')} clusters"
        out.append(f"| {r['task']} | {r['n']:,} x {r['dim']} | {r.get('k', '–')} | {r['backend']} | "
                   f"{r['seconds']:.2f} | {_f(r.get('peak_mib'), '{:.0f}')} | {note} |")
    return out


def _t(seconds) -> str:
    if seconds is None:
        return "–"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1e3:.3g} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.3g} µs"


def _official(rows) -> list[str]:
    out = ["| block | sizes | ssml | official | official / ssml | before → after (official / ssml) | agree |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['block']} | – | – | – | – | – | **failed**: {r['error']} |")
            continue
        sizes = ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in r["sizes"].items())
        before = f"{r['ratio_before']:.2f} → {r['ratio']:.2f}" if "ratio_before" in r else "–"
        out.append(f"| {r['block']} | {sizes}{'' if r.get('paper_size', True) else ' (not paper size)'} | "
                   f"{_t(r['ours_s'])} | {_t(r['official_s'])} | {r['ratio']:.2f} | {before} | "
                   f"{'yes' if r['agree'] else '**no**'} |")
    out += ["", "official / ssml > 1: ssml is faster. *before*: ssml before the speed-ups of issue 12, timed in the "
                "same alternation. How each block checked agreement, what was compared, and the shims the official "
                "code needed here:", ""]
    for r in rows:
        if "error" in r:
            continue
        shims = f" Shims: {'; '.join(r['shims'])}." if r["shims"] else ""
        co = r.get("checkout") or {}
        note = f" {r['note']}." if r.get("note") else ""
        at = r.get("measured_at") or {}
        when = f" Measured at `{(at.get('commit') or 'no commit')[:10]}`, {str(at.get('timestamp_utc'))[:16]}." \
            if at else ""
        out.append(f"- **{r['block']}** ({', '.join(f'{k} {v}' for k, v in r['sizes'].items())}): {r['agreement']}. "
                   f"Official: `{r['official']}` ({r['loaded']}; {co.get('folder')} @ "
                   f"{(co.get('commit') or 'no git')[:8]}). ssml: `{r['ours']}`.{note}{shims}{when}")
        ex = r.get("extrapolated")
        if ex:
            parts = [f"{side} {_t(ex[f'{side}_s'])}" for side in ("ours", "official", "before") if f"{side}_s" in ex]
            out.append(f"  - Projected to N = {ex['N']:,} (one thread): {', '.join(parts)} — {ex['method']}.")
    return out


_RENDER = {"methods": _methods, "input": _input, "retrieval": _retrieval, "official": _official}


def render_readme(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    lines = ["# Benchmarks", "", "Written by `python -m benchmarks.run` (see `benchmarks/run.py`); every figure's JSON "
             "(with provenance) sits next to this file. Overhead = method step time / backbone-only step time "
             "(forward + backward + optimiser) at the same batch and dtype; targets from docs/speed.md.", ""]
    for path in sorted(out_dir.glob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if rec.get("suite") not in _RENDER:
            continue
        prov = rec["provenance"]
        dev, extra, params = prov["device"], prov.get("extra", {}), prov["params"]
        lines += [f"## {rec['suite']}{' (torch.compile)' if params.get('compile') else ''} — {dev['summary']} "
                  f"(`{path.name}`)", "",
                  f"{prov['timestamp_utc']}; torch {extra.get('torch')}, CUDA {extra.get('cuda')}; profile "
                  f"`{params.get('profile')}`{' (quick)' if params.get('quick') else ''}"
                  f"{' (TINY smoke sizes: not figures)' if params.get('tiny') else ''}; "
                  f"{params.get('torch_threads')} torch threads. {extra.get('note', '')}"
                  f"{' PARTIAL: the run stopped before every case finished.' if params.get('partial') else ''}"
                  f"{' Code: ' + extra['code_state'] if extra.get('code_state') else ''}", ""]
        if rec["suite"] == "methods":
            lines += [f"_{extra.get('profile_note', '')}_", ""]
        lines += _RENDER[rec["suite"]](rec["rows"]) + [""]
    if (out_dir / "NOTES.md").exists():
        lines[4:4] = ["What the figures say, where the time goes, and their caveats: [NOTES.md](NOTES.md).", ""]
    if overhead_plot(out_dir) is not None:
        lines[4:4] = ["![method overhead per case and device](overhead.png)", ""]
    path = out_dir / "README.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
