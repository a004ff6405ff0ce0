import copy
import inspect
import math
import pickle

import pytest
import torch
from torch import nn

from skae.noise import (
    FunctionNoise,
    GaussianNoise,
    MaskingNoise,
    SaltPepperNoise,
    make_noise,
)


def flip_sign(x, generator):
    """Module-level so that FunctionNoise(flip_sign) can be pickled."""
    keep = torch.rand(x.shape, generator=generator, device=x.device) < 0.5
    return torch.where(keep, x, -x)


LAYERS = {
    "gaussian": lambda: GaussianNoise(0.5),
    "gaussian_clip": lambda: GaussianNoise(0.5, clip=(0.0, 1.0)),
    "masking": lambda: MaskingNoise(0.5),
    "salt_pepper": lambda: SaltPepperNoise(0.5),
    "function": lambda: FunctionNoise(flip_sign),
}


@pytest.fixture(params=list(LAYERS), ids=list(LAYERS))
def layer(request):
    return LAYERS[request.param]()


def generator(seed=0, device="cpu"):
    return torch.Generator(device=device).manual_seed(seed)


def data(dtype=torch.float32, device="cpu", shape=(8, 10)):
    # Values in (0.2, 0.8): never equal to a masking or salt/pepper value, so
    # every replaced entry is visible.
    g = generator(123, device)
    return 0.2 + 0.6 * torch.rand(shape, generator=g, dtype=dtype, device=device)


def test_eval_mode_returns_input_itself(layer):
    x = data()
    assert layer.eval()(x) is x


def test_train_mode_corrupts_a_copy(layer):
    x = data()
    x_before = x.clone()
    out = layer.set_generator(generator())(x)
    assert out.shape == x.shape
    assert not torch.equal(out, x)
    torch.testing.assert_close(x, x_before, rtol=0, atol=0)


def test_same_seed_same_noise_and_fresh_noise_each_call(layer):
    x = data()
    other = copy.deepcopy(layer)
    first, second = (layer.set_generator(generator(0))(x) for _ in range(2))
    torch.testing.assert_close(first, second, rtol=0, atol=0)

    other.set_generator(generator(0))
    assert not torch.equal(other(x), other(x))


def test_generator_is_not_in_state_dict(layer):
    layer.set_generator(generator())
    assert layer.state_dict() == {}


def test_default_rng_without_generator(layer):
    assert not torch.equal(layer(data()), data())


@pytest.mark.parametrize(
    "copier", [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))]
)
def test_copy_round_trip_with_generator(layer, copier):
    g = generator()
    layer.set_generator(g)
    copied = copier(layer)

    assert copied.training
    # A generator of its own, in the same state: the same noise comes next.
    assert copied.generator is not g
    assert layer.generator is g
    assert repr(copied) == repr(layer)
    x = data()
    torch.testing.assert_close(copied(x), layer(x), rtol=0, atol=0)
    torch.testing.assert_close(
        copied.set_generator(generator(1))(x),
        layer.set_generator(generator(1))(x),
        rtol=0,
        atol=0,
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_preserves_dtype(layer, dtype):
    x = data(dtype)
    out = layer.set_generator(generator())(x)
    assert out.dtype == dtype


def test_set_generator_type_checked():
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None"):
        GaussianNoise(0.1).set_generator(0)


def test_gaussian_std():
    x = torch.zeros(200, 500, dtype=torch.float64)
    out = GaussianNoise(0.3).set_generator(generator())(x)
    assert out.std().item() == pytest.approx(0.3, rel=0.02)
    assert out.mean().item() == pytest.approx(0.0, abs=0.01)


def test_gaussian_std_zero_is_identity_copy():
    x = data()
    out = GaussianNoise(0.0)(x)
    assert out is not x
    torch.testing.assert_close(out, x, rtol=0, atol=0)


@pytest.mark.parametrize("clip", [(0.0, 1.0), (-0.5, 0.25)])
def test_gaussian_clip(clip):
    out = GaussianNoise(2.0, clip=clip).set_generator(generator())(data())
    assert out.min().item() == clip[0]
    assert out.max().item() == clip[1]


def test_gaussian_needs_floating_input():
    with pytest.raises(TypeError, match="floating point input, got dtype torch.int64"):
        GaussianNoise(0.1)(torch.ones(2, 3, dtype=torch.int64))


@pytest.mark.parametrize(
    ("layer", "dtype", "message"),
    [
        (MaskingNoise(0.5, value=0.5), torch.int64, r"value=0.5 .* store 0\. "),
        (MaskingNoise(0.5, value=-1.0), torch.uint8, r"value=-1.0 .* store 255\. "),
        (SaltPepperNoise(0.5, high=2.0), torch.bool, r"high=2.0 .* store True\. "),
        (SaltPepperNoise(0.5, low=0.0, high=255.5), torch.uint8, r"high=255.5"),
    ],
)
def test_fill_values_an_integer_input_would_change_are_refused(layer, dtype, message):
    # masked_fill truncated, wrapped or saturated them without a word.
    with pytest.raises(ValueError, match=rf"cannot write {message}"):
        layer(torch.ones(2, 4, dtype=dtype))


@pytest.mark.parametrize(
    ("layer", "dtype", "message"),
    [
        (MaskingNoise(0.5, value=1e6), torch.float16, r"value=1000000.0 .* inf\. "),
        (MaskingNoise(0.5, value=-1e300), torch.float32, r"value=-1e\+300 .* -inf"),
        (SaltPepperNoise(0.5, high=1e300), torch.bfloat16, r"high=1e\+300 .* inf"),
    ],
)
def test_fill_values_beyond_a_floating_input_are_refused(layer, dtype, message):
    # masked_fill raised torch's "value cannot be converted to type
    # c10::Half without overflow", naming neither the layer nor the value.
    with pytest.raises(ValueError, match=rf"cannot write {message}"):
        layer.set_generator(generator())(torch.ones(2, 4, dtype=dtype))


def test_fill_values_a_floating_input_holds_are_written():
    # Rounded as any value is, and infinities stay infinities.
    x = torch.ones(2, 4, dtype=torch.float16)
    out = MaskingNoise(1.0, value=0.1).set_generator(generator())(x)
    assert out.eq(torch.tensor(0.1, dtype=torch.float16)).all()
    out = MaskingNoise(1.0, value=-math.inf).set_generator(generator())(x)
    assert out.eq(-math.inf).all()


def test_fill_values_an_integer_input_holds_are_written():
    x = torch.full((2, 4), 7, dtype=torch.uint8)
    out = SaltPepperNoise(1.0, low=0.0, high=255.0).set_generator(generator())(x)
    assert out.dtype == torch.uint8
    assert set(out.flatten().tolist()) <= {0, 255}
    out = MaskingNoise(1.0)(torch.ones(2, 4, dtype=torch.bool))
    assert not out.any()


@pytest.mark.parametrize(
    ("fraction", "n_features", "n_replaced"),
    [(0.0, 10, 0), (0.3, 10, 3), (0.25, 6, 2), (0.5, 7, 4), (1.0, 10, 10)],
)
@pytest.mark.parametrize("value", [0.0, -3.5])
def test_masking_count_and_value(fraction, n_features, n_replaced, value):
    x = data(shape=(16, n_features))
    out = MaskingNoise(fraction, value=value).set_generator(generator())(x)
    replaced = out != x
    assert replaced.sum(dim=1).tolist() == [n_replaced] * 16
    assert torch.all(out[replaced] == value)


def test_masking_chooses_different_entries_per_row():
    out = MaskingNoise(0.5).set_generator(generator())(data(shape=(16, 10)))
    masks = out == 0
    assert len(torch.unique(masks, dim=0)) > 1


def test_masking_each_entry_equally_likely():
    x = torch.ones(4000, 5)
    out = MaskingNoise(0.4).set_generator(generator())(x)
    frequency = (out == 0).double().mean(dim=0)
    torch.testing.assert_close(
        frequency, torch.full((5,), 0.4).double(), atol=0.03, rtol=0
    )


@pytest.mark.parametrize(
    ("fraction", "n_replaced"), [(0.0, 0), (0.2, 2), (0.5, 5), (1.0, 10)]
)
@pytest.mark.parametrize(("low", "high"), [(0.0, 1.0), (-1.0, 2.0)])
def test_salt_pepper_count_and_values(fraction, n_replaced, low, high):
    x = data(shape=(32, 10))
    out = SaltPepperNoise(fraction, low=low, high=high).set_generator(generator())(x)
    replaced = out != x
    assert replaced.sum(dim=1).tolist() == [n_replaced] * 32
    values = out[replaced]
    assert torch.all((values == low) | (values == high))
    if n_replaced:
        assert (values == low).any()
        assert (values == high).any()
        assert (values == high).double().mean().item() == pytest.approx(0.5, abs=0.15)


def test_image_shaped_input_counts_per_sample():
    x = data(shape=(4, 2, 3, 3))
    out = MaskingNoise(0.5).set_generator(generator())(x)
    assert out.shape == x.shape
    assert (out == 0).flatten(1).sum(dim=1).tolist() == [9] * 4


def test_clip_applies_to_every_kind():
    out = make_noise("salt_pepper", 0.5, clip=(0.1, 0.9))(data())
    assert out.min().item() == pytest.approx(0.1)
    assert out.max().item() == pytest.approx(0.9)


def test_function_noise_passes_generator():
    seen = []

    def fn(x, generator):
        seen.append(generator)
        return x + 1

    g = generator()
    FunctionNoise(fn).set_generator(g)(data())
    FunctionNoise(fn)(data())
    assert seen == [g, None]


def test_function_noise_shape_checked():
    layer = FunctionNoise(lambda x, generator: x[:, :-1])
    with pytest.raises(
        ValueError, match=r"input's shape \(8, 10\), got shape \(8, 9\)"
    ):
        layer(data())


def test_function_noise_comes_back_in_the_input_dtype():
    layer = FunctionNoise(lambda x, generator: x.double() + 1)
    x = data()
    out = layer(x)
    assert out.dtype == x.dtype
    assert torch.allclose(out, x + 1)


def test_function_noise_complex_output_for_a_real_input_refused():
    # It was cast to the input's dtype, dropping the imaginary part with only
    # torch's "Casting complex values to real discards the imaginary part".
    layer = FunctionNoise(lambda x, generator: x * (1 + 1j))
    with pytest.raises(
        TypeError,
        match=r"The noise function <lambda> returned complex values \(dtype "
        r"torch.complex64\) for an input of dtype torch.float32",
    ):
        layer(data())
    # A complex input may have complex noise.
    x = data().to(torch.complex64)
    assert torch.equal(layer(x), x * (1 + 1j))


def test_function_noise_under_inference_mode():
    # The in-place check read x._version, which an inference tensor lacks:
    # "RuntimeError: Inference tensors do not track version counter".
    def negate_in_place(x, generator):
        return x.neg_()

    with torch.inference_mode():
        x = data()
        assert torch.equal(FunctionNoise(flip_sign)(x).abs(), x)
        # Handed a copy there, so that the clean input stays clean.
        out = FunctionNoise(negate_in_place)(x)
    assert torch.equal(out, -x)
    assert (x > 0).all()


def test_function_noise_device_checked():
    layer = FunctionNoise(lambda x, generator: x.to("meta"))
    with pytest.raises(ValueError, match=r"on the input's device cpu, got one on meta"):
        layer(data())


def test_function_noise_must_not_modify_its_input():
    # The clean rows are the target: corrupting them in place would train
    # the identity without a word.
    def add_in_place(x, generator):
        return x.add_(1.0)

    x = data()
    with pytest.raises(
        ValueError, match=r"The noise function add_in_place modified its input"
    ):
        FunctionNoise(add_in_place)(x)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_function_noise_non_finite_output_checked(bad):
    def spoil(x, generator):
        return torch.where(x > 0.5, torch.full_like(x, bad), x)

    with pytest.raises(
        ValueError,
        match=r"The noise function spoil returned NaN or infinite values",
    ):
        FunctionNoise(spoil)(data())


def test_function_noise_infinity_clipped_is_fine():
    def to_infinity(x, generator):
        return torch.full_like(x, float("inf"))

    out = FunctionNoise(to_infinity, clip=(0.0, 1.0))(data())
    assert torch.equal(out, torch.ones_like(out))


def test_function_noise_non_finite_input_passes_through():
    # NaN in, NaN out: not the function's fault, and not the layer's to judge.
    x = data()
    x[0, 0] = float("nan")
    out = FunctionNoise(flip_sign)(x)
    assert out[0, 0].isnan()


def test_make_noise_refuses_a_layer():
    with pytest.raises(TypeError, match=r"is a corruption layer; pass its kind"):
        make_noise(GaussianNoise(0.1), 0.1)


def test_function_noise_reads_a_modules_signature_from_its_forward():
    # A module's __call__ takes anything: nn.Dropout was accepted, then failed
    # in the first epoch with "forward() takes 2 positional arguments".
    with pytest.raises(
        TypeError,
        match=r"The noise function Dropout\(p=0.2, inplace=False\) must take "
        r"\(x, generator\), but its signature is \(input",
    ):
        FunctionNoise(nn.Dropout(0.2))

    class Shift(nn.Module):
        def forward(self, x, generator):
            return x + 1

    torch.testing.assert_close(FunctionNoise(Shift())(data()), data() + 1)


def test_function_noise_return_type_checked():
    layer = FunctionNoise(lambda x, generator: x.numpy())
    with pytest.raises(TypeError, match="must return a torch.Tensor, got ndarray"):
        layer(data())


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (
            lambda: GaussianNoise(-0.1),
            ValueError,
            r"std must be a finite number >= 0, got -0.1",
        ),
        (
            lambda: GaussianNoise(float("inf")),
            ValueError,
            "std must be a finite number >= 0, got inf",
        ),
        (
            lambda: GaussianNoise(float("nan")),
            ValueError,
            "std must be a finite number >= 0, got nan",
        ),
        (
            lambda: GaussianNoise("0.1"),
            TypeError,
            "std must be a real number, got '0.1'",
        ),
        (
            lambda: GaussianNoise(0.1, clip=(1.0, 0.0)),
            ValueError,
            r"clip must be None or a pair \(low, high\) with low < high, "
            r"got \(1.0, 0.0\)",
        ),
        (lambda: GaussianNoise(0.1, clip=(0.0, 0.0)), ValueError, "low < high"),
        (
            lambda: GaussianNoise(0.1, clip=(0.0,)),
            ValueError,
            "clip must be None or a pair",
        ),
        (
            lambda: GaussianNoise(0.1, clip="ab"),
            ValueError,
            "clip must be None or a pair",
        ),
        (
            lambda: GaussianNoise(0.1, clip=(0.0, "1")),
            TypeError,
            "each bound of clip must be a real number",
        ),
        (
            lambda: MaskingNoise(1.5),
            ValueError,
            r"fraction must be in the range \[0, 1\], got 1.5",
        ),
        (
            lambda: MaskingNoise(-0.1),
            ValueError,
            r"fraction must be in the range \[0, 1\], got -0.1",
        ),
        (
            lambda: MaskingNoise(True),
            TypeError,
            "fraction must be a real number, got True",
        ),
        (
            lambda: MaskingNoise(0.1, value=None),
            TypeError,
            "value must be a real number, got None",
        ),
        (
            lambda: SaltPepperNoise(2),
            ValueError,
            r"fraction must be in the range \[0, 1\], got 2",
        ),
        (
            lambda: SaltPepperNoise(0.1, high="1"),
            TypeError,
            "high must be a real number",
        ),
        (
            lambda: FunctionNoise("gaussian"),
            TypeError,
            "fn must be a callable fn\\(x, generator\\)",
        ),
        (
            lambda: SaltPepperNoise(0.1, low=1, high=0),
            ValueError,
            "low=1 must not exceed high=0",
        ),
        # NaN compared False with high, and passed the order check.
        (
            lambda: SaltPepperNoise(0.1, low=float("nan")),
            ValueError,
            "low and high must be numbers with low <= high, got low=nan",
        ),
        (
            lambda: SaltPepperNoise(0.1, high=float("nan")),
            ValueError,
            "low and high must be numbers with low <= high, got low=0.0, high=nan",
        ),
    ],
)
def test_bad_parameters(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_input_must_be_a_tensor(layer):
    with pytest.raises(TypeError, match=r"corrupts torch tensors; got ndarray"):
        layer(data().numpy())


@pytest.mark.parametrize(
    ("noise", "expected", "attribute"),
    [
        ("gaussian", GaussianNoise, "std"),
        ("masking", MaskingNoise, "fraction"),
        ("salt_pepper", SaltPepperNoise, "fraction"),
    ],
)
def test_make_noise_by_name(noise, expected, attribute):
    layer = make_noise(noise, 0.25, clip=(0.0, 1.0))
    assert type(layer) is expected
    assert getattr(layer, attribute) == 0.25
    assert layer.clip == (0.0, 1.0)
    assert layer.training
    assert layer.generator is None


def test_make_noise_callable():
    layer = make_noise(flip_sign, 0.25)
    assert isinstance(layer, FunctionNoise)
    assert layer.fn is flip_sign


@pytest.mark.parametrize(
    ("noise", "noise_level", "clip", "error", "match"),
    [
        (
            "uniform",
            0.1,
            None,
            ValueError,
            r"noise must be one of \('gaussian', 'masking', 'salt_pepper'\) "
            r"or a callable fn\(x, generator\), got 'uniform'",
        ),
        (3, 0.1, None, TypeError, "noise must be one of .* got 3"),
        (
            "gaussian",
            -1,
            None,
            ValueError,
            r"noise_level \(the std of noise='gaussian'\) must be a finite "
            r"number >= 0, got -1",
        ),
        (
            "masking",
            1.1,
            None,
            ValueError,
            r"noise_level \(the fraction masked\) must be in the range \[0, 1\], "
            r"got 1.1",
        ),
        (
            "salt_pepper",
            -0.5,
            None,
            ValueError,
            r"noise_level \(the fraction flipped\) must be in the range "
            r"\[0, 1\], got -0.5",
        ),
        ("masking", None, None, TypeError, "noise_level .* real number, got None"),
        ("masking", 0.1, (1, 0), ValueError, "clip must be None or a pair"),
        (flip_sign, 0.1, (1, 0), ValueError, "clip must be None or a pair"),
    ],
)
def test_make_noise_errors(noise, noise_level, clip, error, match):
    with pytest.raises(error, match=match):
        make_noise(noise, noise_level, clip=clip)


@pytest.mark.parametrize(
    "Layer", [GaussianNoise, MaskingNoise, SaltPepperNoise, FunctionNoise]
)
def test_docstrings_are_filled_and_document_every_parameter_once(Layer):
    # The paragraphs the layers share are filled in: no placeholder is left.
    doc = Layer.__doc__
    assert "%(" not in doc
    for parameter in list(inspect.signature(Layer).parameters):
        assert doc.count(f"\n    {parameter} : ") == 1, parameter
    assert "\n    Attributes\n    ----------\n    generator : " in doc


def test_repr():
    assert repr(GaussianNoise(0.1)) == "GaussianNoise(std=0.1)"
    assert repr(MaskingNoise(0.2, value=-1, clip=(-1, 1))) == (
        "MaskingNoise(fraction=0.2, value=-1.0, clip=(-1.0, 1.0))"
    )
    assert (
        repr(SaltPepperNoise(0.3)) == "SaltPepperNoise(fraction=0.3, low=0.0, high=1.0)"
    )
    assert repr(FunctionNoise(flip_sign)) == "FunctionNoise(fn=flip_sign)"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda(layer, dtype):
    x = data(dtype, device="cuda")
    first = layer.set_generator(generator(0, "cuda"))(x)
    second = layer.set_generator(generator(0, "cuda"))(x)
    assert first.device == x.device
    assert first.dtype == dtype
    assert not torch.equal(first, x)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    with pytest.raises(ValueError, match="generator is on device 'cpu'"):
        layer.set_generator(generator())(x)


@pytest.mark.parametrize(
    ("clip", "dtype", "expected"),
    [
        ((0, 1), torch.int64, {0, 1}),
        ((0.5, 2.5), torch.int64, {1, 2}),
        ((-1e9, 1e9), torch.uint8, {0, 3}),
        ((0.5, 1), torch.bool, {True}),
        ((-math.inf, 0.5), torch.bool, {False}),
    ],
)
def test_clip_keeps_an_integer_input_in_its_dtype(clip, dtype, expected):
    # Float bounds made the clamp of an integer or bool input return float32.
    x = torch.full((2, 4), 3).to(dtype)
    out = MaskingNoise(0.5, clip=clip).set_generator(generator())(x)
    assert out.dtype == dtype
    assert set(out.flatten().tolist()) == expected


def test_clip_without_a_value_of_the_integer_dtype_is_refused():
    with pytest.raises(ValueError, match=r"clip=\(0.2, 0.8\) holds no value of the"):
        MaskingNoise(0.5, clip=(0.2, 0.8))(torch.ones(2, 4, dtype=torch.int64))


@pytest.mark.parametrize(
    ("clip", "dtype", "expected"),
    [
        ((-1e6, 1e6), torch.float16, 3.0),
        ((-1e300, 1e300), torch.bfloat16, 3.0),
        ((-1e300, 1e300), torch.float32, 3.0),
        ((1e300, math.inf), torch.float32, math.inf),
        ((0.0, 1e6), torch.float16, 3.0),
    ],
)
def test_clip_beyond_a_floating_dtype_rounds_to_it(clip, dtype, expected):
    # A bound the dtype cannot hold raised torch's "value cannot be converted
    # to type c10::Half without overflow"; it rounds as the values do, to inf.
    x = torch.full((2, 4), 3.0, dtype=dtype)
    out = GaussianNoise(0.0, clip=clip)(x)
    assert out.dtype == dtype
    assert out.eq(expected).all()
