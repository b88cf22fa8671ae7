"""Sums an `ncu --csv --page raw --metrics gpu__time_duration.sum` log by kernel name: where a step's GPU time goes.

    ncu --clock-control none --metrics gpu__time_duration.sum --csv --page raw --log-file k.csv <command>
    python3 bench/cuda/ncu_kernel_summary.py k.csv [passes]

ncu runs the kernels one at a time, so the sum is the step's kernel time without overlap or idle gaps: set against
the step's measured time, the difference is host gaps and copies waited for. `passes` divides the totals (e.g. the
number of forward+backward passes the command ran).
"""
import collections
import csv
import sys


def main():
    path = sys.argv[1]
    passes = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    header, total, count = None, collections.Counter(), collections.Counter()
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if header is None:
                if "Kernel Name" in row:
                    header = row
                continue
            d = dict(zip(header, row))
            value = d.get("gpu__time_duration.sum", "").replace(",", "")
            try:
                ns = float(value)
            except ValueError:
                continue  # the units row
            name = d["Kernel Name"][:90]
            total[name] += ns
            count[name] += 1
    if header is None:
        sys.exit(f"{path}: no 'Kernel Name' column (was ncu run with --csv --page raw?)")
    all_ns = sum(total.values())
    print(f"{sum(count.values())} kernels, {all_ns / 1e6 / passes:.2f} ms per pass over {passes:g} pass(es)")
    for name, ns in total.most_common(60):
        print(f"{ns / 1e6 / passes:10.3f} ms  {count[name] / passes:8.1f}  {name}")


if __name__ == "__main__":
    main()
