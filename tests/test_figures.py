"""Each figure command runs (quick budgets) and writes a non-empty PNG; the numbers drawn are
those of the formulas they illustrate; the command line, including through the installed
``backprop`` script."""

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from backprop.figures import FIGURES, make_figures, rosenbrock, rosenbrock_grad

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[1]
BACKPROP = REPO / ".venv" / "bin" / "backprop"


def _is_png(path) -> bool:
    data = Path(path).read_bytes()
    return len(data) > 1000 and data[:8] == PNG_MAGIC


@pytest.fixture(scope="module")
def quick_gallery(tmp_path_factory):
    out = tmp_path_factory.mktemp("gallery")
    results = make_figures(out, quick=True)
    return out, {r.name: r for r in results}


@pytest.mark.parametrize("name", list(FIGURES))
def test_each_figure_writes_a_png(quick_gallery, name):
    out, results = quick_gallery
    res = results[name]
    assert res.files and all(Path(f).parent == out for f in res.files)
    pngs = [f for f in res.files if f.endswith(".png")]
    assert pngs == [str(out / f"{name}.png")]
    assert _is_png(pngs[0])
    assert res.claim and res.seconds >= 0


def test_xor_gif_is_animated(quick_gallery):
    out, _ = quick_gallery
    from PIL import Image

    with Image.open(out / "xor_boundary.gif") as im:
        assert im.format == "GIF" and im.n_frames > 3


def test_figures_json_records_every_figure(quick_gallery):
    out, results = quick_gallery
    summary = json.loads((out / "figures.json").read_text())
    assert set(summary) == set(FIGURES)
    assert summary["gd_parabola"]["files"] == ["gd_parabola.png"]
    assert summary["gd_parabola"]["quick"] is True


def test_gd_parabola_follows_the_closed_form(quick_gallery):
    num = quick_gallery[1]["gd_parabola"].numbers
    x0, steps = num["x0"], num["steps"]
    for lr, x in num["final_x"].items():
        assert x == pytest.approx(x0 * (1 - 2 * float(lr)) ** steps, rel=1e-12)
    assert abs(num["final_x"]["1.05"]) > x0 > abs(num["final_x"]["0.05"])


def test_critical_point_verdicts(quick_gallery):
    num = quick_gallery[1]["critical_points"].numbers
    assert num["constructed saddle"]["verdict"] == "saddle"
    assert num["trained minimum"]["verdict"] == "minimum"
    assert num["symmetric minimum"]["verdict"] == "degenerate minimum"


def test_minibatch_gradient_noise_matches_its_prediction(quick_gallery):
    rows = quick_gallery[1]["minibatch"].numbers["rows"]
    sizes = sorted(rows, key=int)
    for B in sizes[:-1]:
        r = rows[B]
        assert r["gradient_noise"] == pytest.approx(r["gradient_noise_predicted"], rel=0.5)
    assert rows[sizes[-1]]["gradient_noise"] < 1e-20  # the full batch has no noise
    assert rows[sizes[0]]["gradient_noise"] > rows[sizes[1]]["gradient_noise"]


def test_rosenbrock_gradient():
    from backprop.gradcheck import relative_error

    p = np.array([-1.2, 1.0])
    h = 1e-6
    num = [
        (rosenbrock(p + h * e) - rosenbrock(p - h * e)) / (2 * h) for e in np.eye(2)
    ]  # fmt: skip
    assert relative_error(rosenbrock_grad(p), np.array(num)) < 1e-7
    assert rosenbrock(np.array([1.0, 1.0])) == 0


def test_only_and_merge(tmp_path):
    make_figures(tmp_path, only=["lr_schedules"], quick=True)
    make_figures(tmp_path, only=["gd_parabola"], quick=True)
    summary = json.loads((tmp_path / "figures.json").read_text())
    assert set(summary) == {"lr_schedules", "gd_parabola"}
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["gd_parabola.png", "lr_schedules.png"]
    with pytest.raises(ValueError, match="unknown figure 'nope'"):
        make_figures(tmp_path, only=["nope"])


def test_cli_register(tmp_path, capsys):
    from backprop import cli_figures

    parser = argparse.ArgumentParser(prog="backprop")
    cli_figures.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["figures", "--out", str(tmp_path / "g"), "--only", "gd_parabola", "--quick"]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "gd_parabola" in out and "1 figure(s) written" in out
    assert _is_png(tmp_path / "g" / "gd_parabola.png")
    with pytest.raises(SystemExit):
        parser.parse_args(["figures", "--only", "nope"])


@pytest.mark.skipif(not BACKPROP.exists(), reason="the backprop script is not installed")
def test_installed_command(tmp_path):
    run = subprocess.run(
        [str(BACKPROP), "figures", "--quick", "--only", "lr_schedules", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert _is_png(tmp_path / "lr_schedules.png")


def test_xor_rows_are_labelled_by_their_outcome(tmp_path):
    # From --seed 1 the first network seed of the "solved" row stays stuck at 50% and that of
    # the "stuck" row solves XOR: the rows were labelled the wrong way round.
    from backprop.figures import figure_xor_boundary

    num = figure_xor_boundary(tmp_path, seed=1, gif=False).numbers
    assert num["solved"]["accuracy"] == 1.0 and num["solved"]["loss"] < 0.05
    assert num["stuck"]["accuracy"] < 1.0
    assert num["solved"]["seed"] != num["stuck"]["seed"]


def test_a_figure_function_creates_its_folder(tmp_path):
    """figure_*(out_dir) on a folder that did not exist raised FileNotFoundError; only
    make_figures created it."""
    from backprop.figures import figure_lr_schedules

    out = tmp_path / "new" / "dir"
    result = figure_lr_schedules(out, quick=True)
    assert (out / "lr_schedules.png").is_file()
    assert result
