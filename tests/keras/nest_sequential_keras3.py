#!/usr/bin/python3
"""Wraps a Keras 3 Sequential .keras (its layers, then a last layer) into a
Functional model whose first part is that Sequential nested as one layer, as
Keras 3 saves

    inner = keras.Sequential([keras.Input(shape), ...all but the last layer])
    inputs = keras.Input(shape)
    model = keras.Model(inputs, last_layer(inner(inputs)))

config.json: the Functional config in Keras 3's args/keras_history form, the
Sequential's whole config as one of its layers. model.weights.h5: what Keras
3's saving_lib writes by walking the objects: each model's `layers` under
layers/<key>/, the key the class in snake case numbered per class within that
model's own list (Sequential.layers leaves its InputLayer out, Functional's
does not), so the nested layers sit at layers/sequential/layers/<key>/vars and
the outer last Dense is layers/dense/vars even when it was dense_1 inside the
flat model; every vars group records its layer's name. The optimizer's
variables and compile_config are kept (same order of trainable variables).
Used by tests/test_keras.sh.

    /usr/bin/python3 tests/keras/nest_sequential_keras3.py IN.keras OUT.keras
"""
import io
import json
import re
import sys
import zipfile

import h5py


def snake(name):
    """Keras's to_snake_case: "Conv2D" -> "conv2d", "MaxPooling2D" -> "max_pooling2d"."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def keys(layers):
    """The saving_lib key of each layer (by its name), numbered per class."""
    seen, out = {}, {}
    for layer in layers:
        k = snake(layer["class_name"])
        n = seen.get(k, 0)
        seen[k] = n + 1
        out[layer["config"]["name"]] = k if n == 0 else "%s_%d" % (k, n)
    return out


def tensor(layer_name, shape):
    return {"class_name": "__keras_tensor__",
            "config": {"shape": shape, "dtype": "float32", "keras_history": [layer_name, 0, 0]}}


def main():
    src, dst = sys.argv[1], sys.argv[2]
    zin = zipfile.ZipFile(src)
    root = json.loads(zin.read("config.json"))
    if root["class_name"] != "Sequential":
        raise SystemExit("%s: expected a Sequential model, got %s" % (src, root["class_name"]))
    layers = root["config"]["layers"]
    first = layers[0]
    if first["class_name"] != "InputLayer":
        raise SystemExit("%s: expected an InputLayer first" % src)
    shape = first["config"]["batch_shape"]
    inner, head = layers[:-1], layers[-1]
    head_name = head["config"]["name"]
    head_in = head.get("build_config", {}).get("input_shape", [None])
    outer_input = {"module": "keras.layers", "class_name": "InputLayer",
                   "config": {"batch_shape": shape, "dtype": "float32", "sparse": False,
                              "name": "input_layer_1"},
                   "registered_name": None, "name": "input_layer_1", "inbound_nodes": []}
    nested = {"module": "keras", "class_name": "Sequential",
              "config": {"name": "sequential", "trainable": True, "layers": inner},
              "registered_name": None, "build_config": {"input_shape": shape},
              "name": "sequential",
              "inbound_nodes": [{"args": [tensor("input_layer_1", shape)], "kwargs": {}}]}
    outer_head = dict(head)
    outer_head["name"] = head_name
    outer_head["inbound_nodes"] = [{"args": [tensor("sequential", head_in)], "kwargs": {}}]
    outer = [outer_input, nested, outer_head]
    model = {"module": "keras.src.models.functional", "class_name": "Functional",
             "config": {"name": "functional", "trainable": True, "layers": outer,
                        "input_layers": [["input_layer_1", 0, 0]],
                        "output_layers": [[head_name, 0, 0]]},
             "registered_name": "Functional", "build_config": {"input_shape": None}}
    if "compile_config" in root:
        model["compile_config"] = root["compile_config"]

    fin = h5py.File(io.BytesIO(zin.read("model.weights.h5")), "r")
    src_keys = keys([l for l in layers if l["class_name"] != "InputLayer"])
    inner_keys = keys([l for l in inner if l["class_name"] != "InputLayer"])
    outer_keys = keys(outer)
    buf = io.BytesIO()
    with h5py.File(buf, "w") as fout:
        fout.create_group("vars").attrs["name"] = "functional"

        def copy(name, path):
            g = fout.create_group(path)
            g.attrs["name"] = name
            for k, v in fin["layers"][src_keys[name]]["vars"].items():
                g.create_dataset(k, data=v[()])

        fout.create_group("layers/%s/vars" % outer_keys["input_layer_1"]).attrs["name"] = "input_layer_1"
        fout.create_group("layers/%s/vars" % outer_keys["sequential"]).attrs["name"] = "sequential"
        for name, key in inner_keys.items():
            copy(name, "layers/%s/layers/%s/vars" % (outer_keys["sequential"], key))
        copy(head_name, "layers/%s/vars" % outer_keys[head_name])
        if "optimizer" in fin:
            fin.copy(fin["optimizer"], fout, "optimizer")
    with zipfile.ZipFile(dst, "w") as zout:
        if "metadata.json" in zin.namelist():
            zout.writestr("metadata.json", zin.read("metadata.json"))
        zout.writestr("config.json", json.dumps(model))
        zout.writestr("model.weights.h5", buf.getvalue())


if __name__ == "__main__":
    main()
