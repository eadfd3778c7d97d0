"""python -m runtimes.restore: runners, image kinds (EXIF, 16-bit, grey, alpha, odd sizes), tiling, bad inputs.

The tiny model has a global residual with a level conv at the end, so level 0 returns the input exactly:
pixel-exact checks of the I/O path run at level 0, restoration checks at level 25.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from runtimes.apps.photo import orient, read_photo
from runtimes.apps.restore import RestoreConfig, main, plan_max_pixels, restore_file, tile_bytes_per_pixel


def rand_u8(h, w, c=3, seed=0):
    shape = (h, w) if c == 1 else (h, w, c)
    return (np.random.default_rng(seed).random(shape) * 255).astype(np.uint8)


def save(path, arr, **kw):
    from PIL import Image

    Image.fromarray(arr).save(path, **kw)
    return path


def load(path):
    from PIL import Image

    with Image.open(path) as im:
        return im.mode, np.asarray(im), im.getexif()


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err.strip()


def fake_artifact(tmp_path, task="denoise", meta=True, lo=0.0, hi=255.0):
    path = tmp_path / f"{task}.onnx"
    path.write_bytes(b"not really onnx")
    if meta:
        a, b = {"denoise": (1 / 75, 0.0), "sr": (1 / 4, -1 / 4), "dejpeg": (-1 / 90, 100 / 90)}[task]
        lm = {"task": task, "unit": "level", "a": a, "b": b, "lo": lo, "hi": hi}
        (tmp_path / f"{task}.onnx.meta.json").write_text(json.dumps({"task": task, "level_map": lm}))
    return path


def test_onnx_restore_matches_the_runner(tmp_path, capsys, tiny_onnx):
    from runtimes.runners.onnxruntime import OnnxRunner

    src = save(tmp_path / "in.png", rand_u8(40, 56))
    code, err = run(capsys, src, "--model", tiny_onnx, "--level", 25, "-o", tmp_path / "out.png", "--threads", 1)
    assert code == 0, err
    with OnnxRunner(tiny_onnx, provider="cpu") as r:
        x = np.asarray(read_photo(src).rgb).transpose(2, 0, 1)[None]
        ref = r.run({"image": x, "level": np.array([25], np.float32)})["restored"][0].transpose(1, 2, 0)
    out = load(tmp_path / "out.png")[1].astype(np.float32) / 255
    assert np.abs(out - np.clip(ref, 0, 1)).max() <= 1 / 255 + 1e-6
    assert np.abs(out - np.asarray(read_photo(src).rgb)).max() > 0  # it changed the image


def test_torch_checkpoint_and_tiling_parity(tmp_path, random_ckpt):
    tiny_ckpt = random_ckpt(tmp_path / "gain.safetensors", out_gain=1.0)  # a residual as large as the body's
    src = save(tmp_path / "big.png", rand_u8(300, 262, seed=3))
    whole = restore_file(RestoreConfig(src, str(tiny_ckpt), "25", tmp_path / "whole.png", threads=1))
    assert not whole["tiled"] and whole["runner"].startswith("torch")
    meta = {"arch": {"channels": 8, "tail_channels": 8, "blocks": 1, "form": "linear"}}
    mb = (300 * 262 * 64 + 150 * 150 * tile_bytes_per_pixel(meta)) / 2**20
    assert plan_max_pixels(meta, 300, 262, mb) < 300 * 262
    tiled = restore_file(RestoreConfig(src, str(tiny_ckpt), "25", tmp_path / "tiled.png", max_memory_mb=mb, threads=1))
    assert tiled["tiled"]
    a, b = load(tmp_path / "whole.png")[1].astype(int), load(tmp_path / "tiled.png")[1].astype(int)
    assert np.abs(a - b).max() <= 2 and np.abs(a - b).mean() < 0.05
    assert np.abs(a - load(src)[1].astype(int)).mean() > 1  # the model changes the image clearly


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orient_matches_pillow(orientation):
    from PIL import Image, ImageOps

    arr = rand_u8(5, 7)
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.info["exif"] = exif.tobytes()
    im._exif = None  # let Pillow re-read the block we set
    expected = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(orient(arr, orientation), expected)


def test_exif_orientation_honoured_and_metadata_kept(tmp_path, capsys, tiny_ckpt):
    from PIL import Image

    arr = rand_u8(6, 10)
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112], exif[0x010F] = 6, "Maker"
    icc = b"fake-icc-profile"
    src = tmp_path / "in.png"
    im.save(src, exif=exif.tobytes(), icc_profile=icc)
    code, err = run(capsys, src, "-m", tiny_ckpt, "-l", 0, "-o", tmp_path / "out.png")
    assert code == 0, err
    with Image.open(tmp_path / "out.png") as out:
        np.testing.assert_array_equal(np.asarray(out), np.rot90(arr, -1))
        assert out.getexif()[0x0112] == 1 and out.getexif()[0x010F] == "Maker"
        assert out.info.get("icc_profile") == icc


def test_16bit_grey_and_colour(tmp_path, capsys, tiny_ckpt):
    import cv2
    from PIL import Image

    g16 = (np.random.default_rng(0).random((9, 11)) * 65535).astype(np.uint16)
    save(tmp_path / "g16.png", g16)
    assert run(capsys, tmp_path / "g16.png", "-m", tiny_ckpt, "-l", 0, "-o", tmp_path / "g16o.png")[0] == 0
    with Image.open(tmp_path / "g16o.png") as out:
        assert out.mode.startswith("I;16") or out.mode == "I"
        assert np.abs(np.asarray(out).astype(int) - g16).max() <= 1
    c16 = (np.random.default_rng(1).random((8, 6, 3)) * 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "c16.png"), c16)
    assert run(capsys, tmp_path / "c16.png", "-m", tiny_ckpt, "-l", 0, "-o", tmp_path / "c16o.png")[0] == 0
    out = cv2.imread(str(tmp_path / "c16o.png"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and np.abs(out.astype(int) - c16).max() <= 1


def test_grey_stays_grey_and_alpha_is_kept(tmp_path, capsys, tiny_ckpt):
    save(tmp_path / "g.png", rand_u8(12, 9, 1))
    assert run(capsys, tmp_path / "g.png", "-m", tiny_ckpt, "-l", 20, "-o", tmp_path / "g_out.png")[0] == 0
    assert load(tmp_path / "g_out.png")[0] == "L"
    rgba = rand_u8(10, 14, 4, seed=2)
    save(tmp_path / "a.png", rgba)
    assert run(capsys, tmp_path / "a.png", "-m", tiny_ckpt, "-l", 20, "-o", tmp_path / "a_out.png")[0] == 0
    mode, out, _ = load(tmp_path / "a_out.png")
    assert mode == "RGBA"
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    code, err = run(capsys, tmp_path / "a.png", "-m", tiny_ckpt, "-l", 20, "-o", tmp_path / "a_out.jpg")
    assert code == 2 and "alpha" in err and not (tmp_path / "a_out.jpg").exists()


@pytest.mark.parametrize("h,w", [(1, 1), (7, 5), (33, 18), (2, 31)])
def test_odd_and_tiny_sizes(tmp_path, capsys, tiny_ckpt, h, w):
    save(tmp_path / "in.png", rand_u8(h, w))
    code, err = run(capsys, tmp_path / "in.png", "-m", tiny_ckpt, "-l", 25, "-o", tmp_path / "out.png")
    assert code == 0, err
    assert load(tmp_path / "out.png")[1].shape == (h, w, 3)


def test_auto_levels(tmp_path, capsys, tiny_ckpt):
    clean = np.clip(np.mgrid[0:64, 0:64][1] * 3.0 + 40, 0, 255)
    noisy = np.round(np.clip(clean[..., None] + 20 * np.random.default_rng(0).standard_normal((64, 64, 3)), 0, 255))
    save(tmp_path / "n.png", noisy.astype(np.uint8))
    code, err = run(capsys, tmp_path / "n.png", "-m", tiny_ckpt, "-l", "auto", "-o", tmp_path / "o.png")
    assert code == 0 and "estimated sigma" in err
    assert abs(float(err.split("estimated sigma ")[1].split()[0]) - 20) < 2


def bad_cases(tmp_path, tiny_ckpt):
    good = save(tmp_path / "good.png", rand_u8(8, 8))
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    (tmp_path / "trunc.png").write_bytes(good.read_bytes()[:40])
    (tmp_path / "model.pt").write_bytes(b"x")
    (tmp_path / "file").write_text("a file, not a folder")
    bare = fake_artifact(tmp_path / "bare", meta=False) if (tmp_path / "bare").mkdir() is None else None
    nometa = tmp_path / "nometa.safetensors"
    nometa.write_bytes((2).to_bytes(8, "little") + b"{}")
    sr = fake_artifact(tmp_path, "sr", lo=1.0, hi=16.0)
    dj = fake_artifact(tmp_path, "dejpeg", lo=1.0, hi=100.0)
    ck = str(tiny_ckpt)
    return {
        "missing": (tmp_path / "nope.png", ck, "25", "not found"),
        "empty": (tmp_path / "empty.png", ck, "25", "empty"),
        "not-an-image": (tmp_path / "text.png", ck, "25", "cannot read"),
        "corrupt": (tmp_path / "trunc.png", ck, "25", "cannot read"),
        "unknown-suffix": (good, str(tmp_path / "model.pt"), "25", "unknown model format"),
        "no-metadata": (good, str(bare), "25", "meta.json"),
        "ckpt-no-metadata": (good, str(nometa), "25", "no levelres metadata"),
        "no-such-model": (good, "no-such-weights", "25", "model not found"),
        "nan": (good, ck, "nan", "finite"), "inf": (good, ck, "inf", "finite"),
        "negative": (good, ck, "-5", "outside"), "huge": (good, ck, "1e9", "outside"),
        "text": (good, ck, "abc", "number"),
        "sr-auto": (good, str(sr), "auto", "give the scale"),
        "dejpeg-auto-png": (good, str(dj), "auto", "JPEG"),
    }


BAD = ["missing", "empty", "not-an-image", "corrupt", "unknown-suffix", "no-metadata", "ckpt-no-metadata",
       "no-such-model", "nan", "inf", "negative", "huge", "text", "sr-auto", "dejpeg-auto-png"]


@pytest.mark.parametrize("case", BAD)
def test_bad_inputs_fail_in_one_line(tmp_path, capsys, tiny_ckpt, case):
    image, model, level, words = bad_cases(tmp_path, tiny_ckpt)[case]
    out = tmp_path / "out.png"
    code, err = run(capsys, image, "--model", model, "--level", level, "-o", out)
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error:"), err
    assert words in err, err
    assert not out.exists()


@pytest.mark.parametrize("out_rel,words", [("file/out.png", "writable"), ("out.xyz", "suffix"), (".", "folder")])
def test_bad_output_paths(tmp_path, capsys, tiny_ckpt, out_rel, words):
    good = save(tmp_path / "good.png", rand_u8(8, 8))
    (tmp_path / "file").write_text("a file, not a folder")
    code, err = run(capsys, good, "-m", tiny_ckpt, "-l", 5, "-o", tmp_path / out_rel)
    assert code == 2 and len(err.splitlines()) == 1 and words in err, err
    assert not (tmp_path / "out.xyz").exists()


def test_memory_bound_too_small(tmp_path, capsys, tiny_ckpt):
    good = save(tmp_path / "good.png", rand_u8(64, 64))
    code, err = run(capsys, good, "-m", tiny_ckpt, "-l", 5, "-o", tmp_path / "o.png", "--max-memory", 0.5)
    assert code == 2 and "too small" in err and not (tmp_path / "o.png").exists()


def test_sr_upscales_by_the_level(tmp_path, capsys, random_ckpt):
    """An SR model gets the image bicubic-resized by the scale (as in training); alpha follows; x1 is exact."""
    import cv2

    from train.checkpoint import load_checkpoint
    from train.evaluate import restore as torch_restore

    ckpt = random_ckpt(tmp_path / "sr.safetensors", task="sr", out_gain=1.0)
    src = save(tmp_path / "small.png", rand_u8(20, 30, seed=4))
    code, err = run(capsys, src, "-m", ckpt, "-l", 3, "-o", tmp_path / "big.png")
    assert code == 0 and "60x90" not in err and "90x60" in err and "upscaled" in err, err
    out = load(tmp_path / "big.png")[1].astype(np.float32) / 255
    up = np.clip(cv2.resize(read_photo(src).rgb, (90, 60), interpolation=cv2.INTER_CUBIC), 0, 1)
    ref = np.clip(torch_restore(load_checkpoint(ckpt)[0], up, 3.0), 0, 1)
    assert out.shape == (60, 90, 3) and np.abs(out - ref).max() <= 1 / 255 + 1e-6
    assert np.abs(out - up).mean() > 1 / 255  # the model changed the bicubic image

    assert run(capsys, src, "-m", ckpt, "-l", 3, "-o", tmp_path / "same.png", "--input-upscaled")[0] == 0
    assert load(tmp_path / "same.png")[1].shape == (20, 30, 3)

    rgba = rand_u8(10, 14, 4, seed=5)
    save(tmp_path / "a.png", rgba)
    assert run(capsys, tmp_path / "a.png", "-m", ckpt, "-l", 2, "-o", tmp_path / "a_big.png")[0] == 0
    mode, got, _ = load(tmp_path / "a_big.png")
    assert mode == "RGBA" and got.shape == (20, 28, 4)
    np.testing.assert_array_equal(got[..., 3], cv2.resize(rgba[..., 3], (28, 20), interpolation=cv2.INTER_LINEAR))

    assert run(capsys, src, "-m", ckpt, "-l", 1, "-o", tmp_path / "one.png")[0] == 0  # the neutral scale
    np.testing.assert_array_equal(load(tmp_path / "one.png")[1], load(src)[1])


def test_sr_flags_are_checked(tmp_path, capsys, tiny_ckpt, random_ckpt):
    src = save(tmp_path / "in.png", rand_u8(16, 16))
    code, err = run(capsys, src, "-m", tiny_ckpt, "-l", 25, "-o", tmp_path / "o.png", "--input-upscaled")
    assert code == 2 and "applies to SR models" in err and len(err.splitlines()) == 1
    ckpt = random_ckpt(tmp_path / "sr.safetensors", task="sr")
    code, err = run(capsys, src, "-m", ckpt, "-l", 16, "-o", tmp_path / "o.png", "--max-memory", 0.05)
    assert code == 2 and "upscaling 16x16 by 16" in err and not (tmp_path / "o.png").exists()


def test_a_level_past_the_strongest_training_level_warns_on_one_line(tmp_path, capsys, tiny_onnx):
    """The model saturates past its largest training level (sigma 75 here): restore says so, once, on stderr."""
    src = save(tmp_path / "in.png", rand_u8(20, 24))
    code, err = run(capsys, src, "--model", tiny_onnx, "--level", 120, "-o", tmp_path / "o120.png")
    assert code == 0, err
    warnings_ = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings_ == ["warning: level 120 is past the strongest training level (sigma 75): the model saturates "
                         "there and restores it as sigma 75"], err
    code, err = run(capsys, src, "--model", tiny_onnx, "--level", 75, "-o", tmp_path / "o75.png")
    assert code == 0 and "warning" not in err, err
    np.testing.assert_array_equal(load(tmp_path / "o120.png")[1], load(tmp_path / "o75.png")[1])  # saturated


def _sixteen_bit_file(path) -> bool:
    from PIL import Image

    from runtimes.apps.photo import _sixteen_bit

    with Image.open(path) as im:
        return _sixteen_bit(im, path)


def test_8bit_images_need_no_opencv_and_16bit_colour_names_the_extra(tmp_path, capsys, tiny_onnx, monkeypatch):
    """The base install (no OpenCV) restores 8-bit images; a 16-bit colour PNG asks for levelres[opencv]."""
    import runtimes.apps.photo as photo
    from runtimes.core.errors import MissingDependency

    def no_opencv(module, extra):
        raise MissingDependency(module, extra)

    c16 = (np.random.default_rng(1).random((8, 6, 3)) * 65535).astype(np.uint16)
    cv2 = pytest.importorskip("cv2")
    cv2.imwrite(str(tmp_path / "c16.png"), c16)
    cv2.imwrite(str(tmp_path / "c16.tif"), c16)
    assert _sixteen_bit_file(tmp_path / "c16.tif") and _sixteen_bit_file(tmp_path / "c16.png")
    monkeypatch.setattr(photo, "require", no_opencv)
    for suffix, kw in ((".png", {}), (".tif", {}), (".jpg", {"quality": 95})):
        src = save(tmp_path / f"in{suffix}", rand_u8(12, 16), **kw)
        assert not _sixteen_bit_file(src)
        code, err = run(capsys, src, "--model", tiny_onnx, "--level", 10, "-o", tmp_path / f"o{suffix}.png")
        assert code == 0, err
    code, err = run(capsys, tmp_path / "c16.png", "--model", tiny_onnx, "--level", 10, "-o", tmp_path / "o16.png")
    assert code == 2 and err == "error: cv2 is not installed: pip install 'levelres[opencv]'", err
