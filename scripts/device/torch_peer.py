"""PyTorch (cuDNN) on CUDA as a GPU peer for the report: one F.conv2d per layer of the set,
random data, bias on, timed with CUDA events after a warm-up (median of the timed calls).
Prints `RESULT<TAB>torch_cuda<TAB>layer<TAB>median ms` lines, the format `report --peer` reads.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", required=True)
    ap.add_argument("--min-time", type=float, default=0.2)
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    dev = torch.device("cuda")
    doc = json.load(open(args.layers))
    layers = doc["layers"] if isinstance(doc, dict) else doc
    for l in layers:
        n, c_in, c_out, h, w = (l[k] for k in ("n", "c_in", "c_out", "h", "w"))
        kh, kw, s, p, d, g = (l[k] for k in ("kh", "kw", "stride", "pad", "dilation", "groups"))
        x = torch.randn(n, c_in, h, w, device=dev)
        wt = torch.randn(c_out, c_in // g, kh, kw, device=dev)
        b = torch.randn(c_out, device=dev)

        def run():
            return F.conv2d(x, wt, b, stride=s, padding=p, dilation=d, groups=g)

        for _ in range(5):
            run()
        torch.cuda.synchronize()
        times, began = [], time.perf_counter()
        while len(times) < 10 or time.perf_counter() - began < args.min_time:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        print(f"RESULT\ttorch_cuda\t{l['name']}\t{statistics.median(times):.5f}", flush=True)


if __name__ == "__main__":
    main()
