"""`studio predict` on a model file whose metadata lies: one `error:` line, exit 2, nothing huge allocated.

The files are real exports of tiny runs with their `metadata_props` edited, as anyone can do to a
file they hand out; a few hand-built graphs cover what only a foreign file declares.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

import studio.data as data
import studio.export.predict as predict
from studio.cli import main
from studio.errors import CheckpointError
from tests.export.runs import tiny_digits, toml_for, train_run, write_line_csv


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 14 px digits mlp and a line-fit model, exported; plus a digit image and the line CSV."""
    tmp = tmp_path_factory.mktemp("exported")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(data.LOADERS, "digits", tiny_digits(300, 14))
        image_run = train_run(tmp, "digits", toml_for("digits", "mlp"))
    csv = write_line_csv(tmp / "line.csv")
    line_run = train_run(tmp, "line", toml_for("csv", "linear", path=csv, target="y"))
    for run in (image_run, line_run):
        assert main(["export", str(run), "-o", str(tmp / f"{run.name}.onnx")]) == 0
    png = tmp / "digit.png"
    Image.fromarray(np.full((28, 28), 128, np.uint8)).save(png)
    return {"image": tmp / "digits.onnx", "tabular": tmp / "line.onnx", "png": png, "csv": csv}


def with_metadata(source: Path, target: Path, **changes: str) -> Path:
    """A copy of `source` whose metadata_props say `changes` (a key set to None is removed)."""
    model = onnx.load(str(source))
    props = {p.key: p.value for p in model.metadata_props}
    props.update(changes)
    del model.metadata_props[:]
    for key, value in props.items():
        if value is not None:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
    onnx.save(model, str(target))
    return target


def predict_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["predict", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err and "unexpected failure" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# Each case printed a traceback (or, for the huge shape, allocated gigabytes) before the checks.
IMAGE_CASES = [
    ({"labels": "5"}, ("labels metadata is not a JSON list of names", "'5'")),
    ({"labels": "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"}, ("labels metadata is not a JSON list of names",)),
    ({"labels": '["a", "b"]'}, ("names 2 class(es) but the model gives 10 output(s)",)),
    ({"labels": '["0","1","2","3","4","5","6","7","8","8"]'}, ("labels metadata names '8' twice",)),
    ({"labels": "[" * 100_000}, ("labels metadata is not valid JSON",)),
    ({"input_shape": '["a","b"]'}, ("input_shape metadata", '["a","b"]', "positive whole numbers")),
    ({"input_shape": "1e400"}, ("input_shape metadata '1e400'", "positive whole numbers")),
    ({"input_shape": "[1, 14, 14.5]"}, ("positive whole numbers",)),
    ({"input_shape": "[1, 0, 14]"}, ("positive whole numbers",)),
    ({"input_shape": "[1, 20000, 20000]"}, ("[1, 20000, 20000] asks for 400,000,000 values a sample",)),
    ({"input_shape": "[1, 14, 99999999999999999999999]"}, ("values a sample",)),
    ({"input_shape": "[3, 14, 14]"}, ("[3, 14, 14] does not match the model's input", "1, 14, 14")),
    ({"input_shape": "[196]"}, ("[196] does not match the model's input",)),
    ({"task": "segmentation"}, ("task metadata 'segmentation' is not one of classification, regression",)),
    ({"task": "regression"}, ("regression model with class labels",)),
    ({"kind": "tabular"}, ("kind metadata 'tabular' does not fit its input shape [1, 14, 14]",)),
    ({"kind": "audio"}, ("kind metadata 'audio'",)),
    ({"feature_names": '["x"]'}, ("feature_names metadata names 1 column(s)",)),
]


@pytest.mark.parametrize(("changes", "fragments"), IMAGE_CASES, ids=[json.dumps(c)[:40] for c, _ in IMAGE_CASES])
def test_lying_image_model_metadata_is_one_error_line(
    exported: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    changes: dict[str, str],
    fragments: tuple[str, ...],
) -> None:
    bad = with_metadata(exported["image"], tmp_path / "bad.onnx", **changes)
    code, out, err = predict_cli([str(bad), str(exported["png"])], capsys)
    assert_one_error_line(code, out, err, "bad.onnx", *fragments)


TABULAR_CASES = [
    ({"labels": "5"}, ("labels metadata is not a JSON list of names",)),
    ({"feature_names": '"x"'}, ("feature_names metadata is not a JSON list of names",)),
    ({"feature_names": '["x", "z"]'}, ("feature_names metadata names 2 column(s) but the model takes [1]",)),
    ({"input_shape": "[20000000]"}, ("asks for 20,000,000 values a sample",)),
    ({"input_shape": "{}"}, ("input_shape metadata '{}'",)),
    ({"task": "classification"}, ("a classifier with 1 class(es)",)),  # a line fit has one output
]


@pytest.mark.parametrize(("changes", "fragments"), TABULAR_CASES, ids=[json.dumps(c)[:40] for c, _ in TABULAR_CASES])
def test_lying_tabular_model_metadata_is_one_error_line(
    exported: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    changes: dict[str, str],
    fragments: tuple[str, ...],
) -> None:
    bad = with_metadata(exported["tabular"], tmp_path / "bad.onnx", **changes)
    code, out, err = predict_cli([str(bad), str(exported["csv"])], capsys)
    assert_one_error_line(code, out, err, "bad.onnx", *fragments)


def test_a_huge_input_shape_is_refused_before_any_pixel_is_allocated(
    exported: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[tuple[int, ...]] = []
    real_decode = predict._decode
    monkeypatch.setattr(predict, "_decode", lambda path, *chw: decoded.append(chw) or real_decode(path, *chw))
    with pytest.raises(CheckpointError, match="values a sample"):
        predict.load_image_for_model(exported["png"], (1, 20000, 20000))
    with pytest.raises(CheckpointError, match="at most 8192 px a side"):
        predict.load_image_for_model(exported["png"], (1, 16, 9000))
    with pytest.raises(CheckpointError, match="4 channels"):
        predict.load_image_for_model(exported["png"], (4, 14, 14))
    assert decoded == []
    assert predict.load_image_for_model(exported["png"], (1, 14, 14)).shape == (1, 14, 14)


def test_metadata_missing_falls_back_on_the_graph_and_good_files_still_predict(
    exported: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = predict_cli([str(exported["image"]), str(exported["png"])], capsys)
    assert code == 0 and json.loads(out)["label"] in [str(i) for i in range(10)], err
    bare = with_metadata(exported["image"], tmp_path / "bare.onnx", labels=None, task=None, input_shape=None, kind=None)
    code, out, err = predict_cli([str(bare), str(exported["png"])], capsys)
    assert code == 0, err
    assert len(json.loads(out)["top"]) == 3  # classes by index, from the graph's output width


def _foreign_model(
    path: Path, in_dims: list, meta: dict[str, str], dtype: int = TensorProto.FLOAT, pairs: bool = False
) -> Path:
    """A graph from elsewhere: input -> Flatten -> sum -> output `[batch, 1]`, with these input dims.

    With `pairs`, the features are first reshaped into pairs, which fails at run time on an odd count.
    """
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    pair_shape = helper.make_tensor("pair_shape", TensorProto.INT64, [2], [-1, 2])
    first = (
        [
            helper.make_node("Reshape", ["input", "pair_shape"], ["paired"]),
            helper.make_node("Flatten", ["paired"], ["flat"]),
        ]
        if pairs
        else [helper.make_node("Flatten", ["input"], ["flat"])]
    )
    graph = helper.make_graph(
        [*first, helper.make_node("ReduceSum", ["flat", "axes"], ["output"], keepdims=1)],
        "foreign",
        [helper.make_tensor_value_info("input", dtype, in_dims)],
        [helper.make_tensor_value_info("output", dtype, [in_dims[0], 1])],
        initializer=[axes, pair_shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def test_a_foreign_graph_that_declares_a_huge_input_is_refused(
    exported: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = _foreign_model(tmp_path / "small.onnx", ["n", 1, 14, 14], {"task": "regression"})
    code, out, err = predict_cli([str(small), str(exported["png"])], capsys)
    assert code == 0 and json.loads(out)["prediction"] == pytest.approx(196 * 128 / 255, rel=1e-4), err
    huge = _foreign_model(tmp_path / "huge.onnx", ["n", 1, 20000, 20000], {})
    code, out, err = predict_cli([str(huge), str(exported["png"])], capsys)
    assert_one_error_line(code, out, err, "huge.onnx", "its input [1, 20000, 20000]", "values a sample")


def test_outputs_that_break_the_metadata_promise_are_an_error(exported: dict[str, Path]) -> None:
    # onnxruntime infers the output width of every graph here, so the promise is broken by hand,
    # as a graph whose width depends on the data would break it.
    predictor = predict.OnnxPredictor(exported["tabular"])
    x = np.zeros((5, 1), np.float32)
    assert predictor.outputs(x).shape == (5, 1)
    predictor.info = dataclasses.replace(predictor.info, task="classification", labels=("a", "b", "c"))
    with pytest.raises(CheckpointError, match=r"gave outputs of shape \[5, 1\] for 5 input\(s\).*promises 3"):
        predictor.outputs(x)


def test_a_foreign_graph_of_the_wrong_kind_or_failing_at_run_time_is_one_error_line(
    exported: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ints = _foreign_model(tmp_path / "ints.onnx", ["n", 1], {"task": "regression"}, dtype=TensorProto.INT64)
    code, out, err = predict_cli([str(ints), str(exported["csv"])], capsys)
    assert_one_error_line(code, out, err, "ints.onnx", "input: tensor(int64)", "one float32 tensor")
    meta = {"task": "regression", "kind": "tabular", "input_shape": "[3]", "feature_names": '["x", "y", "x2"]'}
    odd = _foreign_model(tmp_path / "odd.onnx", ["n", "features"], meta, pairs=True)
    rows = tmp_path / "rows.csv"
    rows.write_text("x,y,x2\n1,2,3\n", encoding="utf-8")
    code, out, err = predict_cli([str(odd), str(rows)], capsys)
    assert_one_error_line(code, out, err, "odd.onnx", "failed to run on [3] inputs")
