"""Writes MobileNet v1 and v2 (1.0-224, batch 1, batch norm folded, random He-scaled weights) as
ONNX models, for timing ONNX Runtime on the same networks that sepconv's `CpuNetwork` runs
(`../shared/peers/models/bench_model.py MODEL.onnx --name mobilenet_v1`, then `report --peer`).
The architectures are sepconv's `networks::mobilenet_v1` / `mobilenet_v2`: 3×3 convs padded by
1, ReLU6 after every conv except MobileNet v2's linear projections, global average pool, a
1000-way fully connected layer. Weight values do not change the timing.
Needs the `onnx` and `numpy` packages (peers/ort/requirements.txt).
Usage: python scripts/peer_networks.py OUT_DIR"""
import sys
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

rng = np.random.default_rng(2017)


class Graph:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, p):
        self.n += 1
        return f"{p}{self.n}"

    def conv(self, x, cin, cout, k, stride, groups, relu6):
        w = self.name("w")
        b = self.name("b")
        fan_in = cin // groups * k * k
        self.inits.append(numpy_helper.from_array(
            (rng.uniform(-1, 1, (cout, cin // groups, k, k)) * np.sqrt(6 / fan_in)).astype(np.float32), w))
        self.inits.append(numpy_helper.from_array(rng.uniform(-0.1, 0.1, cout).astype(np.float32), b))
        y = self.name("conv")
        p = k // 2
        self.nodes.append(helper.make_node("Conv", [x, w, b], [y], kernel_shape=[k, k],
                                           strides=[stride, stride], pads=[p, p, p, p], group=groups))
        return self.clip(y) if relu6 else y

    def clip(self, x):
        lo, hi, y = self.name("lo"), self.name("hi"), self.name("relu6")
        self.inits.append(numpy_helper.from_array(np.array(0, np.float32), lo))
        self.inits.append(numpy_helper.from_array(np.array(6, np.float32), hi))
        self.nodes.append(helper.make_node("Clip", [x, lo, hi], [y]))
        return y

    def add(self, a, b):
        y = self.name("add")
        self.nodes.append(helper.make_node("Add", [a, b], [y]))
        return y

    def head(self, x, c, classes=1000):
        p, f, y = self.name("pool"), self.name("flat"), "logits"
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], [p]))
        self.nodes.append(helper.make_node("Flatten", [p], [f], axis=1))
        w, b = self.name("fcw"), self.name("fcb")
        self.inits.append(numpy_helper.from_array(
            (rng.uniform(-1, 1, (classes, c)) * np.sqrt(3 / c)).astype(np.float32), w))
        self.inits.append(numpy_helper.from_array(rng.uniform(-0.1, 0.1, classes).astype(np.float32), b))
        self.nodes.append(helper.make_node("Gemm", [f, w, b], [y], transB=1))
        return y

    def save(self, name, path):
        g = helper.make_graph(self.nodes, name,
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])],
                              self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        onnx.checker.check_model(m)
        onnx.save(m, path)


def mobilenet_v1(path):
    g = Graph()
    x = g.conv("input", 3, 32, 3, 2, 1, True)
    c = 32
    for cout, s in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]:
        x = g.conv(x, c, c, 3, s, c, True)
        x = g.conv(x, c, cout, 1, 1, 1, True)
        c = cout
    g.head(x, c)
    g.save("mobilenet_v1", path)


def mobilenet_v2(path):
    g = Graph()
    x = g.conv("input", 3, 32, 3, 2, 1, True)
    c = 32
    for t, cout, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                          (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            h = x
            mid = c * t
            if t != 1:
                h = g.conv(h, c, mid, 1, 1, 1, True)
            h = g.conv(h, mid, mid, 3, stride, mid, True)
            h = g.conv(h, mid, cout, 1, 1, 1, False)
            x = g.add(x, h) if stride == 1 and c == cout else h
            c = cout
    x = g.conv(x, c, 1280, 1, 1, 1, True)
    g.head(x, 1280)
    g.save("mobilenet_v2", path)


out = sys.argv[1] if len(sys.argv) > 1 else "."
mobilenet_v1(f"{out}/mobilenet_v1.onnx")
mobilenet_v2(f"{out}/mobilenet_v2.onnx")
print(f"wrote {out}/mobilenet_v1.onnx, {out}/mobilenet_v2.onnx")
