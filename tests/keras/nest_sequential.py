#!/usr/bin/python3
"""Wraps a Keras 2 Sequential .h5 (Conv2D ... Flatten, then a last Dense) into a
Functional model whose first part is that Sequential nested as one layer, as
tf.keras 2 saves Model(inputs, Dense(...)(Sequential([...])(inputs))): the
nested model's weights in one model_weights group named after it, its layers'
weight names prefixed with theirs. Used by tests/test_keras.sh.

With --keras3, as Keras 3's legacy writer (model.save("x.h5")) saves the same
model instead: the Keras 3 config (args/keras_history nodes, the nested
Sequential's own InputLayer), keras_version 3.3.3, groups created in name
order with the InputLayer's empty one, weights named by their variables'
paths (the nested ones "inner/<layer>/kernel", no ":0", stored at those paths
inside the group) and an empty top_level_model_weights group.

    /usr/bin/python3 tests/keras/nest_sequential.py [--keras3] IN.h5 OUT.h5
"""
import json
import sys

import h5py

args = sys.argv[1:]
keras3 = "--keras3" in args
if keras3:
    args.remove("--keras3")
src, dst = args


def tensor(name, shape):
    return {"class_name": "__keras_tensor__",
            "config": {"shape": shape, "dtype": "float32", "keras_history": [name, 0, 0]}}


with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
    config = json.loads(f.attrs["model_config"])
    layers = config["config"]["layers"]
    inner, head = layers[:-1], layers[-1]
    shape = inner[0]["config"]["batch_input_shape"]
    name = head["config"]["name"]
    if keras3:
        first = dict(inner[0], config=dict(inner[0]["config"]))
        del first["config"]["batch_input_shape"]
        inner_input = {"class_name": "InputLayer",
                       "config": {"batch_shape": shape, "dtype": "float32", "name": "input_layer_1"}}
        model = {"class_name": "Functional", "config": {"name": "functional", "layers": [
            {"class_name": "InputLayer", "name": "input_layer", "inbound_nodes": [],
             "config": {"batch_shape": shape, "dtype": "float32", "name": "input_layer"}},
            {"class_name": "Sequential", "name": "inner",
             "inbound_nodes": [{"args": [tensor("input_layer", shape)], "kwargs": {}}],
             "config": {"name": "inner", "layers": [inner_input, first] + inner[1:]}},
            {"class_name": head["class_name"], "name": name, "config": head["config"],
             "inbound_nodes": [{"args": [tensor("inner", [None])], "kwargs": {}}]}],
            "input_layers": [["input_layer", 0, 0]], "output_layers": [[name, 0, 0]]}}
        g.attrs["keras_version"] = "3.3.3"
        g.attrs["backend"] = "tensorflow"
        input_name = "input_layer"
    else:
        model = {"class_name": "Functional", "config": {"name": "model", "layers": [
            {"class_name": "InputLayer", "name": "input_1", "inbound_nodes": [],
             "config": {"batch_input_shape": shape, "dtype": "float32", "name": "input_1"}},
            {"class_name": "Sequential", "name": "inner", "inbound_nodes": [[["input_1", 0, 0, {}]]],
             "config": {"name": "inner", "layers": inner}},
            {"class_name": head["class_name"], "name": name,
             "config": head["config"], "inbound_nodes": [[["inner", 0, 0, {}]]]}],
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [[name, 0, 0]]}}
        for key in ("keras_version", "backend"):
            g.attrs[key] = f.attrs[key]
        input_name = "input_1"
    g.attrs["model_config"] = json.dumps(model)
    mw = g.create_group("model_weights")
    names = []
    for layer in inner:
        group = f["model_weights"][layer["config"]["name"]]
        names += [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]

    def renamed(n, prefix):
        """Keras 3's variable path: the scopes, no ":0"."""
        return prefix + n.split(":")[0] if keras3 else n

    groups = {input_name: [], "inner": [(n, renamed(n, "inner/")) for n in names],
              name: [(n, renamed(n, "")) for n in
                     (w.decode() if isinstance(w, bytes) else w
                      for w in f["model_weights"][name].attrs["weight_names"])]}
    for group in (sorted(groups) if keras3 else [input_name, "inner", name]):
        out = mw.create_group(group)
        for old, new in groups[group]:
            layer = old.split("/")[0]
            out.create_dataset(new, data=f["model_weights"][layer][old][()])
        out.attrs["weight_names"] = [new.encode() for _, new in groups[group]]
    mw.attrs["layer_names"] = [input_name.encode(), b"inner", name.encode()]
    if keras3:
        mw.create_group("top_level_model_weights").attrs["weight_names"] = []
