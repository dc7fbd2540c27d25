"""`cnnkit summary` and `cnnkit models` through the real entry point."""

from __future__ import annotations

import json

import pytest

from cnnkit.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_vgg16_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "summary", "vgg16")
    assert code == 0
    assert "features.0" in out and "224 x 224 x 64" in out
    assert "138,357,544" in out and "15.47 G multiply-adds" in out


def test_summary_json_with_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "summary", "resnet18", "--json", "--input", "3x64x64", "--num-classes", "7"
    )
    assert code == 0
    d = json.loads(out)
    assert d["input_size"] == [3, 64, 64]
    assert d["rows"][-1]["output"] == [7]
    assert d["total_params"] == 11_689_512 - 993 * 512 - 993


def test_summary_plain_and_lenet_default_input(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "summary", "resnet34", "--plain", "--json")
    _, out_res, _ = run(capsys, "summary", "resnet34", "--json")
    plain, res = json.loads(out), json.loads(out_res)
    assert plain["total_params"] < res["total_params"] == 21_797_672
    _, out, _ = run(capsys, "summary", "lenet5", "--json")
    assert json.loads(out)["input_size"] == [1, 32, 32]
    assert json.loads(out)["total_params"] == 60_000


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["summary", "vgg61"], "did you mean"),
        (["summary", "vgg16", "--plain"], "ResNets only"),
        (["summary", "vgg16", "--input", "3x8x8"], "too small for vgg16"),
        (["summary", "vgg16", "--input", "big"], "CxHxW"),
        (["summary", "vgg16", "--input", "1x2"], "ambiguous"),
        (["summary", "vgg16", "--input", "1x64x64", "--in-channels", "3"], "--in-channels is 3"),
    ],
)
def test_summary_errors(capsys: pytest.CaptureFixture[str], argv: list[str], needle: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("error: ") and needle in err
    assert out == ""


def test_models_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "vgg1*")
    assert code == 0
    assert "vgg19-dcbb9e9d.pth" in out and "143,667,240" in out
    assert "resnet" not in out
    code, out, _ = run(capsys, "models", "--json", "lenet*")
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["lenet5", "lenet5_modern"]
    assert rows[0]["params"] == 60_000 and rows[0]["input_size"] == [1, 32, 32]
    for extra in ([], ["--json"]):
        code, out, err = run(capsys, "models", "zzz*", *extra)
        assert (code, out) == (2, "")
        assert err == "error: no model matches 'zzz*' (cnnkit models lists them all)\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["--num-classes", "-3"],
        ["--num-classes", "0"],
        ["--in-channels", "0"],
        ["--num-classes", "ten"],
    ],
)
def test_summary_rejects_counts_below_one(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        main(["summary", "vgg16", *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert argv[0] in err and (">= 1" in err or "at least 1" in err)
    assert "Traceback" not in err and "UserWarning" not in err


def test_summary_input_channels_build_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "summary", "resnet50", "--input", "1x224x224", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["input_size"] == [1, 224, 224]
    assert d["total_params"] == 25_557_032 - 2 * 7 * 7 * 64  # conv1 sees 1 channel, not 3


def test_summary_model_name_ignores_case(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "summary", "VGG16", "--input", "32", "--json")
    assert code == 0
    assert json.loads(out)["model"] == "vgg16"
