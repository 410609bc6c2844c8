"""Independent checks of the ONNX files mobilenet::export_onnx writes, for tests/test_onnx.cpp.

Nothing here uses our C++ code: the checks are ONNX's own (checker, shape inference), the
numbers come from onnxruntime, and the cross-check model from torchvision + torch.onnx.

Tensors travel as raw little-endian float32 files; their shape is given as NxCxHxW.
Exit status 77 means "skipped: a package is missing" (the reason is printed), so the C++ test
can say which checks did not run.

Usage:
  check MODEL                          onnx.checker (full_check) + strict shape inference;
                                       prints each output's inferred shape
  describe MODEL OUT                   what the file holds, parsed by onnx, as JSON in OUT:
                                       ir_version, opset, op counts, inputs and outputs
                                       with their dims, metadata, initializer data types,
                                       and the newest opset this onnx knows
  run MODEL IN:SHAPE [IN:SHAPE ...]    onnxruntime on each input; writes IN.<output>.bin
  torchvision OUT WEIGHTS CLASSES OS WIDTH SIZE
                                       torchvision's mobilenet_v2 (dilated to OS, as
                                       torchvision_ref.py does) with WEIGHTS, exported by
                                       torch.onnx.export to OUT (dynamic batch, opset 17)
"""
import os
import sys

SKIP = 77


def skip(why):
    print("SKIPPED: " + why)
    sys.exit(SKIP)


def shape_of(text):
    return tuple(int(d) for d in text.split("x"))


def check(path):
    import onnx
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    for out in inferred.graph.output:
        dims = [d.dim_param or str(d.dim_value) for d in out.type.tensor_type.shape.dim]
        print("output %s %s" % (out.name, "x".join(dims)))
    print("onnx %s: checker and shape inference pass" % onnx.__version__)


def describe(path, out):
    import json
    import onnx
    model = onnx.load(path)
    ops = {}
    for node in model.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    types = {}
    for init in model.graph.initializer:
        name = onnx.TensorProto.DataType.Name(init.data_type)
        types[name] = types.get(name, 0) + 1

    def values(vs):
        return [{"name": v.name,
                 "dims": [d.dim_param or str(d.dim_value) for d in v.type.tensor_type.shape.dim]}
                for v in vs]
    info = {
        "ir_version": model.ir_version,
        "opset": [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0],
        "ops": ops,
        "inputs": values(model.graph.input),
        "outputs": values(model.graph.output),
        "metadata": {p.key: p.value for p in model.metadata_props},
        "initializer_types": types,
        "max_opset": onnx.defs.onnx_opset_version(),
    }
    with open(out, "w") as f:
        json.dump(info, f)
    print("onnx %s: described %s" % (onnx.__version__, path))


def run(path, jobs):
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError as e:
        skip("onnxruntime is not installed for %s (%s)" % (sys.executable, e))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    input_name = session.get_inputs()[0].name
    for job in jobs:
        file, shape = job.rsplit(":", 1)
        x = np.fromfile(file, dtype="<f4").reshape(shape_of(shape))
        for name, value in zip(names, session.run(names, {input_name: x})):
            np.ascontiguousarray(value, dtype="<f4").tofile("%s.%s.bin" % (file, name))
    print("onnxruntime %s: ran %d inputs" % (ort.__version__, len(jobs)))


def torchvision_export(out, weights, classes, output_stride, width, size):
    try:
        import torch
        import torchvision
    except ImportError as e:
        skip("torch/torchvision are not installed for %s (%s)" % (sys.executable, e))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from torchvision_ref import dilate
    model = torchvision.models.mobilenet_v2(num_classes=classes, width_mult=width)
    model = dilate(model, output_stride).eval()
    # Our save_weights files hold LibTorch's type tags, which weights_only=True (the default
    # from torch 2.6) refuses; the file is the test's own.
    model.load_state_dict(torch.load(weights, weights_only=False))
    x = torch.randn(2, 3, size, size)
    kwargs = dict(input_names=["images"], output_names=["logits"], verbose=False)
    # torch >= 2.9 exports through torch.export (dynamo) by default, natively at opset 18
    # (asking for 17 makes it try a down-conversion that fails and keeps 18); older ones have
    # only the TorchScript exporter, whose dynamic axes are declared by name.
    major, minor = (int(v) for v in torch.__version__.split(".")[:2])
    if (major, minor) >= (2, 5):
        batch = torch.export.Dim("batch", min=1, max=1024)
        torch.onnx.export(model, (x,), out, dynamo=True, dynamic_shapes={"x": {0: batch}},
                          opset_version=18, **kwargs)
        how = "torch.onnx.export(dynamo=True, opset 18)"
    else:
        torch.onnx.export(model, (x,), out, dynamic_axes={"images": {0: "batch"}},
                          opset_version=17, **kwargs)
        how = "torch.onnx.export (TorchScript exporter, opset 17)"
    print("torch %s, torchvision %s: %s wrote %s" % (torch.__version__, torchvision.__version__,
                                                    how, out))


def main(argv):
    cmd = argv[0]
    if cmd == "check":
        check(argv[1])
    elif cmd == "describe":
        describe(argv[1], argv[2])
    elif cmd == "run":
        run(argv[1], argv[2:])
    elif cmd == "torchvision":
        torchvision_export(argv[1], argv[2], int(argv[3]), int(argv[4]), float(argv[5]),
                           int(argv[6]))
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
