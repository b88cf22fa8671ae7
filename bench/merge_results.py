"""Joins the longtune rows (dev.longtune.bench.GpuBench) and the PyTorch rows (bench/peers/torch_peer.py) of one GPU run.

    python3 bench/merge_results.py LONGTUNE_JSON TORCH_JSON --out MERGED_JSON --markdown TABLE_MD [--gpu NAME]

Both inputs are JSON lists of rows {"impl", "op", "tokens", "dtype", "median_ms", "tflops", "peak_bytes",
"rel_err", "note"} (optionally "tokens_per_s", "error"). A missing or unreadable input counts as no rows, so
the table still shows the other side. Rows are joined on (op, tokens):
  speed ratio  = torch_ms / longtune_ms       (> 1: ours is faster)
  memory ratio = torch_peak / longtune_peak   (> 1: ours needs less)
MERGED_JSON: {"gpu", "date", "cases": [{"name": "op@tokens", "op", "tokens", "ours", "peer", "ratio",
"memory_ratio"}]}, the layout of the bench/results files (docs/benchmarks.md); TABLE_MD: a markdown table, cells left
empty where one side is missing.
"""
import argparse, datetime, json, os, sys

ORDER = ["attention_fwd", "attention_fwd_bwd", "linear_cross_entropy", "rms_norm_fwd_bwd", "swiglu_fwd_bwd",
         "rope_fwd_bwd", "gemm", "train_step_2layer"]


def load(path, impl):
    if not path or not os.path.exists(path):
        print(f"merge_results: {path or '(none)'} missing: no {impl} rows", file=sys.stderr)
        return {}, f"{impl}: no file"
    try:
        with open(path) as f:
            data = json.load(f)
    except Exception as e:
        print(f"merge_results: {path} unreadable ({e!r}): no {impl} rows", file=sys.stderr)
        return {}, f"{impl}: unreadable"
    if isinstance(data, dict):   # tolerate {"rows": [...]} or {"cases": ...}-free wrappers
        data = data.get("rows", [])
    rows = {}
    for r in data:
        if not isinstance(r, dict) or "op" not in r or "tokens" not in r:
            continue
        key = (str(r["op"]), int(r["tokens"]))
        if key in rows:
            print(f"merge_results: duplicate {impl} row {key}: keeping the last", file=sys.stderr)
        rows[key] = r
    return rows, None


def num(r, k):
    if r is None:
        return None
    v = r.get(k)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def ratio(a, b):
    """a / b, or None."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def f_ms(v):
    if v is None:
        return ""
    return f"{v:.3f}" if v < 10 else (f"{v:.1f}" if v < 1000 else f"{v:,.0f}")


def f_x(v):
    return "" if v is None else f"{v:.2f}×"


def f_tf(v):
    return "" if v is None else f"{v:.0f}" if v >= 10 else f"{v:.2f}"


def f_bytes(v):
    if v is None:
        return ""
    if v < 1 << 20:
        return f"{v / 1024:.0f} KiB" if v >= 1024 else f"{v} B"
    if v < 1 << 30:
        return f"{v / (1 << 20):.1f} MiB"
    return f"{v / (1 << 30):.2f} GiB"


def f_err(v):
    return "" if v is None else f"{v:.1e}"


def cell(s):
    return str(s).replace("|", "\\|").replace("\n", " ")


def side_note(r, tag):
    if r is None:
        return ""
    parts = []
    if r.get("error"):
        parts.append(f"{tag} error: {r['error']}")
    if r.get("note"):
        parts.append(f"{tag}: {r['note']}")
    return "; ".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("longtune_json")
    ap.add_argument("torch_json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--gpu", default=None, help="GPU name for the merged file (default: unknown)")
    ap.add_argument("--short-notes", action="store_true", help="cut each note to 120 characters in the table")
    a = ap.parse_args()

    ours, e1 = load(a.longtune_json, "longtune")
    peer, e2 = load(a.torch_json, "torch")
    keys = set(ours) | set(peer)
    rank = {op: i for i, op in enumerate(ORDER)}
    keys = sorted(keys, key=lambda k: (rank.get(k[0], len(ORDER)), k[0], k[1]))

    cases = []
    lines = ["| op | tokens | ours ms | torch ms | speed ratio (torch/ours) | ours TFLOP/s | torch TFLOP/s | "
             "ours tokens/s | torch tokens/s | ours peak | torch peak | memory ratio (torch/ours) | "
             "ours rel err | torch rel err | notes |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for op, T in keys:
        o = ours.get((op, T))
        # a variant of ours (e.g. train_step_2layer_offload) is compared with the peer row it names
        p = peer.get((o.get("peer_op", op) if o else op, T))
        r = ratio(num(p, "median_ms"), num(o, "median_ms"))
        mr = ratio(num(p, "peak_bytes"), num(o, "peak_bytes"))
        cases.append({"name": f"{op}@{T}", "op": op, "tokens": T, "ours": o, "peer": p,
                      "ratio": None if r is None else round(r, 4),
                      "memory_ratio": None if mr is None else round(mr, 4)})
        notes = "; ".join(x for x in (side_note(o, "ours"), side_note(p, "torch")) if x)
        if a.short_notes:
            notes = notes[:120] + ("…" if len(notes) > 120 else "")
        lines.append("| " + " | ".join(cell(x) for x in (
            op, T, f_ms(num(o, "median_ms")), f_ms(num(p, "median_ms")), f_x(r),
            f_tf(num(o, "tflops")), f_tf(num(p, "tflops")),
            f_tf(num(o, "tokens_per_s")), f_tf(num(p, "tokens_per_s")),
            f_bytes(num(o, "peak_bytes")), f_bytes(num(p, "peak_bytes")), f_x(mr),
            f_err(num(o, "rel_err")), f_err(num(p, "rel_err")), notes)) + " |")

    merged = {"gpu": a.gpu or "unknown", "date": datetime.date.today().isoformat(),
              "sources": {"longtune": a.longtune_json, "torch": a.torch_json},
              "missing": [m for m in (e1, e2) if m], "cases": cases}
    with open(a.out, "w") as f:
        json.dump(merged, f, indent=1)
    head = [f"GPU: {merged['gpu']}, {merged['date']}. Speed ratio = torch ms / ours ms (> 1: ours faster); "
            "memory ratio = torch peak / ours peak (> 1: ours smaller). Peaks are what the op adds over its "
            "preallocated inputs and outputs, except train steps (whole max_memory_allocated).", ""]
    if merged["missing"]:
        head.insert(1, "Missing: " + ", ".join(merged["missing"]) + ".")
    with open(a.markdown, "w") as f:
        f.write("\n".join(head + lines) + "\n")
    print(f"merge_results: {len(cases)} cases ({sum(1 for c in cases if c['ours'] and c['peer'])} with both sides) "
          f"-> {a.out}, {a.markdown}")


if __name__ == "__main__":
    main()
