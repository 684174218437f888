"""TFLite's reference outputs for the int8 models `tinytrain-sim quantize` writes.

For each `tests/fixtures/quantize/<model>.tflite` (written by `tinytrain-sim quantize <model>
--weights tests/fixtures/quantize/<model>.ttw --tflite ...`), loads the file in TensorFlow
Lite's own interpreter with the reference kernels (BUILTIN_REF), runs 100 SplitMix64 int8
inputs (the generator of tools/tflite_reference.py) and writes `<model>.ref.json` next to it,
in the format of tests/fixtures/tflite. A model TFLite refuses to load fails the script.

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install -r tools/requirements-tflite.txt
    /tmp/tfvenv/bin/python tools/quantize_reference.py
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tflite_reference as ref  # noqa: E402

MODELS = {"digits-mlp": 2101, "sine": 2102, "mnist-cnn-tiny": 2103}


def main():
    out_dir = "tests/fixtures/quantize"
    for name, seed in MODELS.items():
        path = os.path.join(out_dir, f"{name}.tflite")
        r = ref.reference(name, path, path, seed, 100, None, out_dir)
        with open(r["fixture"]) as f:
            text = f.read()
        text = text.replace('"generator": "tools/tflite_reference.py"',
                            '"generator": "tools/quantize_reference.py"')
        with open(r["fixture"], "w") as f:
            f.write(text)
        fields = json.loads(text)
        print(f"{name}: ops {', '.join(fields['ops'])}; {r['distinct_outputs']} distinct outputs "
              f"of 100; default kernels differ on {r['optimised_samples_differing']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
