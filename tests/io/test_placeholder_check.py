from cnnkit.io import load_image, sample_path


def test_sample_image_loads_as_rgb_float():
    image = load_image(sample_path("grace_hopper"))
    assert image.shape == (600, 512, 3)
    assert image.dtype.name == "float32"
    assert 0.0 <= image.min() and image.max() <= 1.0
