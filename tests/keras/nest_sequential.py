#!/usr/bin/python3
"""Wraps a Keras 2 Sequential .h5 (Conv2D ... Flatten, then a last Dense) into a
Functional model whose first part is that Sequential nested as one layer, as
tf.keras 2 saves Model(inputs, Dense(...)(Sequential([...])(inputs))): the
nested model's weights in one model_weights group named after it, its layers'
weight names prefixed with theirs. Used by tests/test_keras.sh.

    /usr/bin/python3 tests/keras/nest_sequential.py IN.h5 OUT.h5
"""
import json
import sys

import h5py

src, dst = sys.argv[1], sys.argv[2]
with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
    config = json.loads(f.attrs["model_config"])
    layers = config["config"]["layers"]
    inner, head = layers[:-1], layers[-1]
    shape = inner[0]["config"]["batch_input_shape"]
    model = {"class_name": "Functional", "config": {"name": "model", "layers": [
        {"class_name": "InputLayer", "name": "input_1", "inbound_nodes": [],
         "config": {"batch_input_shape": shape, "dtype": "float32", "name": "input_1"}},
        {"class_name": "Sequential", "name": "inner", "inbound_nodes": [[["input_1", 0, 0, {}]]],
         "config": {"name": "inner", "layers": inner}},
        {"class_name": head["class_name"], "name": head["config"]["name"],
         "config": head["config"], "inbound_nodes": [[["inner", 0, 0, {}]]]}],
        "input_layers": [["input_1", 0, 0]],
        "output_layers": [[head["config"]["name"], 0, 0]]}}
    for key in ("keras_version", "backend"):
        g.attrs[key] = f.attrs[key]
    g.attrs["model_config"] = json.dumps(model)
    mw = g.create_group("model_weights")
    names = []
    for layer in inner:
        group = f["model_weights"][layer["config"]["name"]]
        names += [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
    nested = mw.create_group("inner")
    for n in names:
        layer = n.split("/")[0]
        nested.create_dataset(n, data=f["model_weights"][layer][n][()])
    nested.attrs["weight_names"] = [n.encode() for n in names]
    mw.create_group("input_1").attrs["weight_names"] = []
    name = head["config"]["name"]
    f.copy(f["model_weights"][name], mw, name)
    mw.attrs["layer_names"] = [b"input_1", b"inner", name.encode()]
