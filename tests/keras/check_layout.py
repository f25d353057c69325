#!/usr/bin/python3
"""Checks with h5py that files written by the library are laid out as Keras
lays out its own (tests/test_keras.sh runs it):

    check_layout.py KERAS.h5 OURS.h5 KERAS.keras OURS.keras

For each pair the HDF5 trees must be the same: every group and dataset at
the same path, datasets of the same dtype, shape and storage layout, every
attribute with the same name, type (variable- or fixed-length string, its
character set and padding; float arrays) and shape. Keras's optimizer_weights
in the .h5 are not compared (the library writes no optimizer state in .h5).
The .keras archives must hold the same members in the same order, stored
uncompressed, and config.json must have the same structure: the same keys
at the top, in the model's config, and in every layer and layer config.
Prints each difference; the exit status is the number of differences.
"""
import io
import json
import sys
import zipfile

import h5py


def skeleton(f, skip=()):
    out = {}

    def attrs(obj, path):
        for name in obj.attrs:
            aid = h5py.h5a.open(obj.id, name.encode())
            t, s = aid.get_type(), aid.get_space()
            if isinstance(t, h5py.h5t.TypeStringID):
                kind = ("string", "variable" if t.is_variable_str() else "fixed",
                        "cset %d" % t.get_cset(), "pad %d" % t.get_strpad())
            else:
                kind = (type(t).__name__, t.get_size())
            out[path + "@" + name] = (kind, s.get_simple_extent_type(),
                                      len(s.get_simple_extent_dims()))

    def visit(name, obj):
        if any(name.startswith(p) for p in skip):
            return
        attrs(obj, name)
        if isinstance(obj, h5py.Dataset):
            out[name] = ("dataset", obj.dtype.str, obj.shape,
                         obj.id.get_create_plist().get_layout())
        else:
            out[name] = ("group",)

    attrs(f, "/")
    f.visititems(visit)
    return out


def compare(what, a, b):
    bad = 0
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            print("%s: %s: Keras has %s, ours has %s" % (what, key, a.get(key), b.get(key)))
            bad += 1
    return bad


def config_keys(c):
    keys = {"top": sorted(c), "config": sorted(k for k in c["config"] if k != "layers"),
            "compile_config": sorted(c.get("compile_config") or {})}
    for layer in c["config"]["layers"]:
        keys[layer["config"]["name"]] = (sorted(layer), sorted(layer["config"]))
    return keys


def main():
    keras_h5, ours_h5, keras_zip, ours_zip = sys.argv[1:5]
    bad = compare(".h5", skeleton(h5py.File(keras_h5, "r"), skip=("optimizer_weights",)),
                  skeleton(h5py.File(ours_h5, "r")))
    za, zb = zipfile.ZipFile(keras_zip), zipfile.ZipFile(ours_zip)
    members = lambda z: [(i.filename, i.compress_type) for i in z.infolist()]
    if members(za) != members(zb):
        print(".keras members: Keras has %s, ours has %s" % (members(za), members(zb)))
        bad += 1
    bad += compare(".keras model.weights.h5",
                   skeleton(h5py.File(io.BytesIO(za.read("model.weights.h5")), "r")),
                   skeleton(h5py.File(io.BytesIO(zb.read("model.weights.h5")), "r")))
    ka = config_keys(json.loads(za.read("config.json")))
    kb = config_keys(json.loads(zb.read("config.json")))
    bad += compare(".keras config.json keys", ka, kb)
    ma, mb = json.loads(za.read("metadata.json")), json.loads(zb.read("metadata.json"))
    if sorted(ma) != sorted(mb):
        print(".keras metadata.json: Keras has keys %s, ours %s" % (sorted(ma), sorted(mb)))
        bad += 1
    print("check_layout: %d difference%s" % (bad, "" if bad == 1 else "s"))
    return bad


if __name__ == "__main__":
    sys.exit(main())
