import errno
import gzip
import hashlib
import http.client
import inspect
import io
import os
import pickle
import re
import struct
import tarfile
import threading
import time
import tracemalloc
import warnings
from collections import OrderedDict
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
from sklearn.decomposition import PCA

from skae import datasets
from skae.datasets import (
    fetch_cifar10,
    fetch_fashion_mnist,
    fetch_mnist,
    get_data_home,
    make_embedded_moons,
    make_embedded_swiss_roll,
)

IDX_FETCHERS = [fetch_mnist, fetch_fashion_mnist]
N_TRAIN, N_TEST = 5, 3  # images per IDX subset
N_BATCH = 2  # images per CIFAR batch


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Keep the tests off the user's data, the system's and the network."""
    monkeypatch.delenv("SKAE_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ["_MNIST", "_FASHION_MNIST"]:
        dataset = getattr(datasets, name)
        monkeypatch.setattr(datasets, name, dataset._replace(system_dirs=()))

    def no_network(*args, **kwargs):
        raise AssertionError("the tests must not touch the network")

    monkeypatch.setattr(datasets, "urlopen", no_network)


def idx_bytes(array, magic=None):
    if magic is None:
        magic = 0x0800 | array.ndim
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path, array, magic=None):
    content = idx_bytes(array, magic)
    if path.name.endswith(".gz"):
        content = gzip.compress(content)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def make_idx_set(seed, n_train=N_TRAIN, n_test=N_TEST):
    """Images and labels by IDX file name, distinct for each seed."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in [("train", n_train), ("t10k", n_test)]:
        arrays[f"{prefix}-images-idx3-ubyte"] = rng.integers(
            0, 256, (n, 28, 28), dtype=np.uint8
        )
        arrays[f"{prefix}-labels-idx1-ubyte"] = rng.integers(0, 10, n, dtype=np.uint8)
    return arrays


def write_idx_set(directory, seed=0, gz=True, **kwargs):
    arrays = make_idx_set(seed, **kwargs)
    for name, array in arrays.items():
        write_idx(directory / (f"{name}.gz" if gz else name), array)
    return arrays


def expected_idx(arrays, subset):
    prefixes = {"train": ["train"], "test": ["t10k"], "all": ["train", "t10k"]}
    images = np.concatenate(
        [arrays[f"{p}-images-idx3-ubyte"] for p in prefixes[subset]]
    )
    target = np.concatenate(
        [arrays[f"{p}-labels-idx1-ubyte"] for p in prefixes[subset]]
    )
    return images, target


def test_get_data_home_argument(tmp_path):
    path = tmp_path / "a" / "b"
    assert get_data_home(path) == str(path)
    assert path.is_dir()


def test_get_data_home_env_then_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    assert get_data_home() == str(home / "skae_data")
    assert (home / "skae_data").is_dir()
    monkeypatch.setenv("SKAE_DATA", str(tmp_path / "env"))
    assert get_data_home() == str(tmp_path / "env")
    assert get_data_home("~/other") == str(home / "other")
    # Set but empty is unset.
    monkeypatch.setenv("SKAE_DATA", "")
    assert get_data_home() == str(home / "skae_data")


@pytest.mark.parametrize("fetch", [*IDX_FETCHERS, fetch_cifar10, get_data_home])
def test_a_data_home_that_is_no_path_is_refused_by_name(tmp_path, monkeypatch, fetch):
    # "" searched, and would have downloaded into, the current directory.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="^data_home is an empty path"):
        fetch(data_home="")
    with pytest.raises(TypeError, match="^data_home must be a path .* got 3"):
        fetch(data_home=3)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("fetch", IDX_FETCHERS)
def test_empty_skae_data_is_not_the_current_directory(tmp_path, monkeypatch, fetch):
    # Set but empty is unset for the search too: the files in the current
    # directory are not found, nor are those of its mnist/ subfolder.
    write_idx_set(tmp_path / "cwd")
    write_idx_set(tmp_path / "cwd" / "mnist")
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("SKAE_DATA", "")
    with pytest.raises(OSError, match="download_if_missing=False"):
        fetch(download_if_missing=False)


@pytest.mark.parametrize("fetch", IDX_FETCHERS)
@pytest.mark.parametrize(
    "subset, n_samples", [("train", N_TRAIN), ("test", N_TEST), ("all", 8)]
)
@pytest.mark.parametrize("gz", [True, False])
def test_fetch_idx(tmp_path, fetch, subset, n_samples, gz):
    arrays = write_idx_set(tmp_path, gz=gz)
    bunch = fetch(data_home=tmp_path, subset=subset, download_if_missing=False)
    images, target = expected_idx(arrays, subset)

    assert bunch.data.shape == (n_samples, 784)
    assert bunch.data.dtype == np.float32
    assert bunch.data.min() >= 0 and bunch.data.max() <= 1
    np.testing.assert_allclose(bunch.data, images.reshape(n_samples, -1) / 255)
    assert bunch.images.dtype == np.uint8
    np.testing.assert_array_equal(bunch.images, images)
    assert bunch.target.dtype == np.int64
    np.testing.assert_array_equal(bunch.target, target)
    assert bunch.image_shape == (1, 28, 28)
    assert len(bunch.target_names) == 10
    assert "Source" in bunch.DESCR


def test_target_names():
    assert datasets._MNIST.target_names[0] == "0"
    assert datasets._FASHION_MNIST.target_names[0] == "T-shirt/top"
    assert datasets._FASHION_MNIST.target_names[-1] == "Ankle boot"


@pytest.mark.parametrize("fetch", IDX_FETCHERS)
def test_fetch_idx_return_X_y(tmp_path, fetch):
    write_idx_set(tmp_path)
    bunch = fetch(data_home=tmp_path, download_if_missing=False)
    X, y = fetch(data_home=tmp_path, return_X_y=True, download_if_missing=False)
    np.testing.assert_array_equal(X, bunch.data)
    np.testing.assert_array_equal(y, bunch.target)


@pytest.mark.parametrize("fetch", IDX_FETCHERS)
def test_fetch_subset_needs_only_its_files(tmp_path, fetch):
    arrays = make_idx_set(0)
    for name in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]:
        write_idx(tmp_path / name, arrays[name])
    X, _ = fetch(
        data_home=tmp_path, subset="test", return_X_y=True, download_if_missing=False
    )
    assert X.shape == (N_TEST, 784)
    with pytest.raises(OSError, match="train-images-idx3-ubyte"):
        fetch(data_home=tmp_path, subset="all", download_if_missing=False)


@pytest.mark.parametrize(
    "fetch, folder", [(fetch_mnist, "mnist"), (fetch_fashion_mnist, "fashion-mnist")]
)
def test_lookup_order(tmp_path, monkeypatch, fetch, folder):
    arg, env = tmp_path / "arg", tmp_path / "env"
    write_idx_set(env, seed=1, n_train=2)
    monkeypatch.setenv("SKAE_DATA", str(env))

    # SKAE_DATA is used when no data_home is given, or data_home lacks files.
    for data_home in [None, arg]:
        X, _ = fetch(data_home=data_home, return_X_y=True, download_if_missing=False)
        assert len(X) == 2

    # The data_home argument comes first; in it, the subfolder comes first.
    write_idx_set(arg, seed=2, n_train=3)
    X, _ = fetch(data_home=arg, return_X_y=True, download_if_missing=False)
    assert len(X) == 3
    write_idx_set(arg / folder, seed=3, n_train=4)
    X, _ = fetch(data_home=arg, return_X_y=True, download_if_missing=False)
    assert len(X) == 4


def test_lookup_system_dir_before_cache(tmp_path, monkeypatch):
    system, cache = tmp_path / "system", tmp_path / "home" / "skae_data"
    write_idx_set(cache / "fashion-mnist", seed=1, n_train=2)
    X, _ = fetch_fashion_mnist(return_X_y=True, download_if_missing=False)
    assert len(X) == 2

    write_idx_set(system, seed=2, n_train=3)
    monkeypatch.setattr(
        datasets,
        "_FASHION_MNIST",
        datasets._FASHION_MNIST._replace(system_dirs=(str(system),)),
    )
    X, _ = fetch_fashion_mnist(return_X_y=True, download_if_missing=False)
    assert len(X) == 3


@pytest.mark.parametrize("fetch", IDX_FETCHERS)
def test_fetch_idx_offline_error(tmp_path, fetch):
    msg = (
        r"needs the files train-images-idx3-ubyte, train-labels-idx1-ubyte "
        r"\(gzipped or not\) in one of these directories: .*"
        + re.escape(str(tmp_path))
        + r".*"
        r"download_if_missing=False"
    )
    with pytest.raises(OSError, match=msg):
        fetch(data_home=tmp_path, download_if_missing=False)


def test_fetch_fashion_mnist_offline_error_names_debian_package(tmp_path):
    with pytest.raises(OSError, match="apt-get install dataset-fashion-mnist"):
        fetch_fashion_mnist(data_home=tmp_path, download_if_missing=False)


def serve(monkeypatch, files):
    """Answer urlopen with ``files[url]``, and record the URLs asked for."""
    requested = []

    def fake_urlopen(url, timeout):
        requested.append(url)
        return io.BytesIO(files[url])

    monkeypatch.setattr(datasets, "urlopen", fake_urlopen)
    return requested


@pytest.mark.parametrize(
    "fetch, dataset", [(fetch_mnist, "_MNIST"), (fetch_fashion_mnist, "_FASHION_MNIST")]
)
def test_fetch_idx_downloads_and_verifies(tmp_path, monkeypatch, fetch, dataset):
    spec = getattr(datasets, dataset)
    arrays = make_idx_set(0)
    files = {
        f"{name}.gz": gzip.compress(idx_bytes(array)) for name, array in arrays.items()
    }
    md5 = {name: hashlib.md5(content).hexdigest() for name, content in files.items()}
    monkeypatch.setattr(datasets, dataset, spec._replace(md5=md5))
    requested = serve(
        monkeypatch, {spec.base_url + name: content for name, content in files.items()}
    )

    bunch = fetch(data_home=tmp_path, subset="test")
    np.testing.assert_array_equal(bunch.images, arrays["t10k-images-idx3-ubyte"])
    assert requested == [
        spec.base_url + "t10k-images-idx3-ubyte.gz",
        spec.base_url + "t10k-labels-idx1-ubyte.gz",
    ]
    cache = tmp_path / spec.folder
    assert sorted(os.listdir(cache)) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]

    # Found in the cache the second time: nothing is downloaded.
    fetch(data_home=tmp_path, subset="test")
    assert len(requested) == 2
    # Only the files missing from the cache are downloaded.
    X, _ = fetch(data_home=tmp_path, subset="all", return_X_y=True)
    assert len(X) == N_TRAIN + N_TEST
    assert requested[2:] == [
        spec.base_url + "train-images-idx3-ubyte.gz",
        spec.base_url + "train-labels-idx1-ubyte.gz",
    ]


def test_download_checksum_mismatch(tmp_path, monkeypatch):
    url = datasets._MNIST.base_url + "train-images-idx3-ubyte.gz"
    serve(monkeypatch, {url: b"not the real file"})
    actual = hashlib.md5(b"not the real file").hexdigest()
    expected = datasets._MNIST.md5["train-images-idx3-ubyte.gz"]
    msg = (
        f"The MD5 checksum of train-images-idx3-ubyte.gz downloaded from {url} "
        f"is {actual}, expected {expected}; the file was removed"
    )
    with pytest.raises(OSError, match=msg):
        fetch_mnist(data_home=tmp_path)
    assert os.listdir(tmp_path / "mnist") == []


def test_download_network_failure(tmp_path, monkeypatch):
    def unreachable(url, timeout):
        raise URLError("no route to host")

    monkeypatch.setattr(datasets, "urlopen", unreachable)
    msg = (
        r"Could not download https://ossci-datasets\.s3\.amazonaws\.com/mnist/"
        r"train-images-idx3-ubyte\.gz .*no route to host.*MNIST needs the "
        r"files train-images-idx3-ubyte, train-labels-idx1-ubyte"
    )
    with pytest.raises(OSError, match=msg):
        fetch_mnist(data_home=tmp_path)
    assert os.listdir(tmp_path / "mnist") == []


def test_download_cut_short(tmp_path, monkeypatch):
    # A chunked response that ends early raises http.client.IncompleteRead,
    # which is not an OSError.
    class CutShort(io.BytesIO):
        def read(self, size=-1):
            raise http.client.IncompleteRead(b"partial")

    monkeypatch.setattr(datasets, "urlopen", lambda url, timeout: CutShort())
    with pytest.raises(OSError, match=r"Could not download .*IncompleteRead"):
        fetch_mnist(data_home=tmp_path)
    assert os.listdir(tmp_path / "mnist") == []


def write_part(path, age, is_dir=False):
    """Write a part file, or a part folder holding one, last touched ``age`` ago."""
    if is_dir:
        path.mkdir(parents=True)
        write_part(path / "cifar-10-python.tar.gz.part_0123456789abcdef", age)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    mtime = time.time() - age
    os.utime(path, (mtime, mtime))
    return path


def test_fetch_removes_the_part_files_killed_fetches_left(tmp_path, monkeypatch):
    # A fetch killed (SIGKILL) cannot remove its part files: they piled up in
    # data_home, up to 163 MiB each, forever. The next fetch writing the same
    # file now removes those an hour old; the others may be a concurrent
    # fetch's, and files not skae's part files are no business of skae's.
    arrays = make_idx_set(0)
    files = {
        f"{name}.gz": gzip.compress(idx_bytes(array)) for name, array in arrays.items()
    }
    md5 = {name: hashlib.md5(content).hexdigest() for name, content in files.items()}
    monkeypatch.setattr(datasets, "_MNIST", datasets._MNIST._replace(md5=md5))
    archive = cifar_tar_bytes(make_cifar_batches())
    monkeypatch.setattr(datasets, "_CIFAR10_MD5", hashlib.md5(archive).hexdigest())
    served = {datasets._MNIST.base_url + name: c for name, c in files.items()}
    serve(monkeypatch, {datasets._CIFAR10_URL: archive, **served})
    hour = 60 * 60  # datasets._STALE_PART_AGE
    mnist, cifar = tmp_path / "mnist", tmp_path / "cifar-10"
    images = "t10k-images-idx3-ubyte.gz"
    batches = cifar / "cifar-10-batches-py"
    stale = [
        write_part(mnist / f"{images}.part_0123456789abcdef", hour + 60),
        write_part(cifar / "cifar-10-python.tar.gz.part_0123456789abcdef", hour, True),
        # As tempfile named them before.
        write_part(cifar / "cifar-10-python.tar.gz.part_ab_cd123", hour, True),
        write_part(batches / "test_batch.part_0123456789abcdef", hour + 60),
    ]
    kept = [
        write_part(mnist / f"{images}.part_fedcba9876543210", 60),
        write_part(cifar / "cifar-10-python.tar.gz.part_fedcba9876543210", hour, True),
        # Not skae's, or another file's.
        write_part(mnist / f"{images}.part_notskae", hour + 60),
        write_part(mnist / f"{images}.part_ab_cd123", hour + 60),
        write_part(mnist / f"{images}.part_0123456789abcdef0", hour + 60),
        write_part(mnist / "train-images-idx3-ubyte.gz.part_0123456789abcdef", hour),
        write_part(cifar / "cifar-10-python.tar.gz.part_ab_cd12", hour, True),
    ]
    # A folder whose part file is being written is not stale.
    os.utime(kept[1] / "cifar-10-python.tar.gz.part_0123456789abcdef", None)

    fetch_mnist(data_home=tmp_path, subset="test")
    fetch_cifar10(data_home=tmp_path, subset="test")
    assert [path for path in stale if path.exists()] == []
    assert [path for path in kept if not path.exists()] == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_cached_files_follow_the_umask(tmp_path, monkeypatch, umask):
    # A shared SKAE_DATA: what one user downloads or extracts, the others
    # can read, as with any file the user writes (a temporary file is 0o600).
    archive = cifar_tar_bytes(make_cifar_batches())
    monkeypatch.setattr(datasets, "_CIFAR10_MD5", hashlib.md5(archive).hexdigest())
    files = {
        f"{name}.gz": gzip.compress(idx_bytes(array))
        for name, array in make_idx_set(0).items()
        if name.startswith("t10k")
    }
    md5 = {name: hashlib.md5(content).hexdigest() for name, content in files.items()}
    monkeypatch.setattr(datasets, "_MNIST", datasets._MNIST._replace(md5=md5))
    base_url = datasets._MNIST.base_url
    serve(
        monkeypatch,
        {
            datasets._CIFAR10_URL: archive,
            **{base_url + name: content for name, content in files.items()},
        },
    )
    previous = os.umask(umask)
    try:
        fetch_cifar10(data_home=tmp_path, subset="test")
        fetch_mnist(data_home=tmp_path, subset="test")
    finally:
        os.umask(previous)
    written = [
        *(tmp_path / "cifar-10" / "cifar-10-batches-py").iterdir(),
        *(tmp_path / "mnist").iterdir(),
    ]
    for path in written:
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path.name


# The MD5 checksums the Fashion-MNIST README publishes; the Debian package
# installs it. Its own .gz files are recompressed (no file name, a fixed
# date in the gzip header), so their checksums are not these.
FASHION_README = Path("/usr/share/doc/dataset-fashion-mnist/README.md.gz")


@pytest.mark.skipif(
    not FASHION_README.is_file(),
    reason="needs the Debian package dataset-fashion-mnist",
)
def test_fashion_mnist_md5_are_the_published_ones():
    readme = gzip.decompress(FASHION_README.read_bytes()).decode()
    published = dict(re.findall(r"`([\w-]+\.gz)`.*`([0-9a-f]{32})`", readme))
    assert published == datasets._FASHION_MNIST.md5


def test_read_idx_bad_magic(tmp_path):
    path = write_idx(
        tmp_path / "train-images-idx3-ubyte",
        make_idx_set(0)["train-images-idx3-ubyte"],
        magic=0x00000801,
    )
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(N_TRAIN, np.uint8))
    msg = (
        f"{path} is not an IDX file of the expected kind: its magic number is "
        "0x00000801, expected 0x00000803"
    )
    with pytest.raises(ValueError, match=msg):
        fetch_mnist(data_home=tmp_path, download_if_missing=False)


@pytest.mark.parametrize(
    "cut, msg", [(-10, "holds only 3910 bytes"), (None, "holds more bytes")]
)
def test_read_idx_size_mismatch(tmp_path, cut, msg):
    content = idx_bytes(np.zeros((5, 28, 28), np.uint8))
    content = content[:cut] if cut else content + b"\0"
    path = tmp_path / "images"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"header gives shape \(5, 28, 28\).*" + msg):
        datasets._read_idx(path, 0x00000803)


def _corrupt_deflate(content):
    packed = bytearray(gzip.compress(content))
    packed[len(packed) // 2] ^= 0xFF
    return bytes(packed)


def _bad_crc(content):
    packed = bytearray(gzip.compress(content))
    packed[-8] ^= 0xFF
    return bytes(packed)


@pytest.mark.parametrize("make", [_corrupt_deflate, _bad_crc], ids=["deflate", "crc"])
def test_read_idx_damaged_gzip(tmp_path, make):
    content = idx_bytes(np.random.default_rng(0).integers(0, 256, (5, 28, 28)))
    path = tmp_path / "images.gz"
    path.write_bytes(make(content))
    with pytest.raises(ValueError, match=r"images\.gz is truncated or corrupt \("):
        datasets._read_idx(path, 0x00000803)


@pytest.mark.parametrize("name, compress", [("images.gz", False), ("images", True)])
def test_read_idx_tells_gzip_by_content(tmp_path, name, compress):
    # A .gz a browser saved decompressed was refused as "truncated or
    # corrupt (Not a gzipped file)", and a compressed file without .gz as
    # not an IDX file (magic number 0x1F8B...).
    array = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    content = idx_bytes(array)
    path = tmp_path / name
    path.write_bytes(gzip.compress(content) if compress else content)
    np.testing.assert_array_equal(datasets._read_idx(path, 0x00000803), array)


@pytest.mark.parametrize(
    "extra, msg",
    [(b"", None), (b"\0", "holds more bytes"), (None, "holds only 3910 bytes")],
    ids=["whole", "longer", "shorter"],
)
def test_read_idx_reads_every_gzip_member(tmp_path, extra, msg):
    # A gzip file of several members, as concatenating gzip files makes it:
    # gzip reads them all, but the file was refused as "truncated or corrupt
    # (its gzip trailer does not match the header's shape ...)", the trailer
    # being the last member's only.
    array = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    content = idx_bytes(array)
    content = content[:-10] if extra is None else content + extra
    path = tmp_path / "images.gz"
    members = [content[:1000], content[1000:2000], content[2000:]]
    path.write_bytes(b"".join(map(gzip.compress, members)))
    if msg is None:
        np.testing.assert_array_equal(datasets._read_idx(path, 0x00000803), array)
    else:
        with pytest.raises(ValueError, match=r"header gives shape .*" + msg):
            datasets._read_idx(path, 0x00000803)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_checks_the_header_against_the_file_before_allocating(tmp_path, gz):
    # A header claiming 2**32 - 1 images of 28x28 pixels: about 3 TB.
    content = struct.pack(">IIII", 0x803, 2**32 - 1, 28, 28) + bytes(784)
    path = tmp_path / ("images.gz" if gz else "images")
    path.write_bytes(gzip.compress(content) if gz else content)
    with pytest.raises(ValueError, match=r"gzip trailer|holds only 784 bytes"):
        datasets._read_idx(path, 0x00000803)


def test_read_idx_refuses_an_empty_array(tmp_path):
    path = write_idx(tmp_path / "images", np.zeros((0, 28, 28), np.uint8))
    with pytest.raises(ValueError, match=r"shape \(0, 28, 28\): no data"):
        datasets._read_idx(path, 0x00000803)


@pytest.mark.parametrize(
    "name, content, msg",
    [
        (
            "images.gz",
            gzip.compress(idx_bytes(np.zeros((5, 28, 28), np.uint8)))[:-20],
            "Compressed file ended",
        ),
        ("images", idx_bytes(np.zeros((5, 28, 28), np.uint8))[:10], "header ends"),
    ],
)
def test_read_idx_truncated(tmp_path, name, content, msg):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"is truncated .*{msg}"):
        datasets._read_idx(path, 0x00000803)


def test_fetch_idx_image_label_count_mismatch(tmp_path):
    write_idx_set(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="holds 5 images but .* holds 4 labels"):
        fetch_mnist(data_home=tmp_path, download_if_missing=False)


@pytest.mark.parametrize("fetch", IDX_FETCHERS)
@pytest.mark.parametrize("subset", ["test", "all"])
def test_fetch_idx_images_not_28x28(tmp_path, fetch, subset):
    # 32x32 images were returned as 1024 features against the documented
    # 784, and with 28x28 training images, subset='all' failed in numpy's
    # concatenate ("all the input array dimensions ... must match").
    write_idx_set(tmp_path)
    path = write_idx(
        tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((N_TEST, 32, 32), np.uint8)
    )
    name = "MNIST" if fetch is fetch_mnist else "Fashion-MNIST"
    msg = re.escape(f"{path} holds images of shape (32, 32); {name}'s are (28, 28).")
    with pytest.raises(ValueError, match=msg):
        fetch(data_home=tmp_path, subset=subset, download_if_missing=False)


@pytest.mark.parametrize("gz", [True, False])
def test_fetch_idx_labels_out_of_the_classes(tmp_path, gz):
    # A label past 9 (a flipped byte in an uncompressed file, which has no
    # checksum) was returned as the target without a word.
    write_idx_set(tmp_path, gz=gz)
    name = "train-labels-idx1-ubyte" + (".gz" if gz else "")
    path = write_idx(tmp_path / name, np.array([0, 1, 200, 3, 4], np.uint8))
    msg = re.escape(f"{path} holds a label 200; expected the classes 0 to 9.")
    with pytest.raises(ValueError, match=msg):
        fetch_mnist(data_home=tmp_path, download_if_missing=False)


@pytest.mark.parametrize("fetch", [*IDX_FETCHERS, fetch_cifar10])
@pytest.mark.parametrize(
    "subset, got",
    [
        ("valid", "'valid'"),
        # Several subsets at once: numpy's "truth value ... is ambiguous".
        (np.array(["train", "test"]), re.escape("array(['train', 'test']")),
    ],
)
def test_fetch_bad_subset(tmp_path, fetch, subset, got):
    msg = "subset must be one of 'train', 'test', 'all'; got " + got
    with pytest.raises(ValueError, match=msg):
        fetch(data_home=tmp_path, subset=subset)


@pytest.mark.parametrize("fetch", [*IDX_FETCHERS, fetch_cifar10])
@pytest.mark.parametrize("flag", ["return_X_y", "download_if_missing"])
def test_fetch_flags_must_be_bools(tmp_path, fetch, flag):
    # Read by truthiness, download_if_missing="False" downloaded, and
    # return_X_y="False" returned a tuple.
    with pytest.raises(TypeError, match=f"{flag} must be a bool, got 'False'."):
        fetch(data_home=tmp_path, **{flag: "False"})


@pytest.mark.parametrize("fetch", IDX_FETCHERS)
def test_fetch_flags_take_numpy_bools(tmp_path, fetch):
    write_idx_set(tmp_path)
    X, _ = fetch(data_home=tmp_path, return_X_y=np.True_, download_if_missing=np.False_)
    assert X.shape == (N_TRAIN, 784)


def write_images_of_mean(directory, prefix, n, mean, seed=0):
    """Write ``n`` images of mean pixel about ``mean`` (in [0, 1]), and labels."""
    images = np.random.default_rng(seed).binomial(255, mean, (n, 28, 28))
    path = write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", images)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", np.zeros(n, np.uint8))
    return path


MNIST_LIKE, FASHION_LIKE = 0.13, 0.29


@pytest.mark.parametrize(
    "fetch, mean, found, expected, other",
    [
        (fetch_mnist, FASHION_LIKE, "0.290", "MNIST's", "Fashion-MNIST's"),
        (fetch_fashion_mnist, MNIST_LIKE, "0.130", "Fashion-MNIST's", "MNIST's"),
    ],
)
@pytest.mark.parametrize("subset, prefix", [("train", "train"), ("test", "t10k")])
def test_fetch_idx_warns_of_the_other_datasets_file(
    tmp_path, fetch, mean, found, expected, other, subset, prefix
):
    # Both datasets' files have the same names: Fashion-MNIST's put where
    # fetch_mnist looks were returned as MNIST without a word, and the reverse.
    path = write_images_of_mean(tmp_path, prefix, 1000, mean)
    means = datasets._MEAN_PIXEL
    own, theirs = expected[:-2], other[:-2]
    msg = (
        re.escape(str(path)) + f" has a mean pixel of {found}, where {expected} "
        f"{subset} images have {means[own][subset]:.3f} and {other} "
        f"{means[theirs][subset]:.3f}: it may be {other} file.*use the same file "
        r"names, so keep each dataset's files in its own folder"
    )
    with pytest.warns(UserWarning, match=msg) as record:
        fetch(data_home=tmp_path, subset=subset, download_if_missing=False)
    # Pointed at the caller, not at skae.
    assert record[0].filename == __file__


@pytest.mark.parametrize(
    "fetch, mean, n",
    [
        (fetch_mnist, MNIST_LIKE, 1000),
        (fetch_fashion_mnist, FASHION_LIKE, 1000),
        # Too few images for the mean to tell the datasets apart.
        (fetch_mnist, FASHION_LIKE, 999),
        (fetch_fashion_mnist, MNIST_LIKE, 999),
    ],
)
def test_fetch_idx_no_warning_for_its_own_files(tmp_path, fetch, mean, n):
    write_images_of_mean(tmp_path, "train", n, mean)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X, _ = fetch(data_home=tmp_path, return_X_y=True, download_if_missing=False)
    assert len(X) == n


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(),
    reason="needs the Debian package dataset-fashion-mnist",
)
def test_fetch_fashion_mnist_debian(tmp_path, monkeypatch):
    monkeypatch.setattr(
        datasets,
        "_FASHION_MNIST",
        datasets._FASHION_MNIST._replace(
            system_dirs=("/usr/share/datasets/fashion-mnist",)
        ),
    )
    # The real files are on Fashion-MNIST's side of the mean-pixel bound.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bunch = fetch_fashion_mnist(
            data_home=tmp_path, subset="all", download_if_missing=False
        )
    assert bunch.data.shape == (70000, 784)
    assert bunch.images.shape == (70000, 28, 28)
    np.testing.assert_array_equal(np.bincount(bunch.target[:60000]), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(bunch.target[60000:]), [1000] * 10)
    assert bunch.data.max() == 1.0


# CIFAR-10


def make_cifar_batches(seed=0):
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return {
        name: {
            b"batch_label": name.encode(),
            b"data": rng.integers(0, 256, (N_BATCH, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, N_BATCH).tolist(),
        }
        for name in names
    }


def write_cifar_batches(directory, batches):
    directory.mkdir(parents=True, exist_ok=True)
    for name, batch in batches.items():
        # The published batches are Python 2 pickles, whose str load as
        # bytes; Python 3 writes bytes as such from protocol 3 on.
        (directory / name).write_bytes(pickle.dumps(batch, protocol=4))


def cifar_tar_bytes(batches, extra=()):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        members = [
            (f"cifar-10-batches-py/{name}", pickle.dumps(batch, protocol=4))
            for name, batch in batches.items()
        ]
        for name, content in [*members, *extra]:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def expected_cifar(batches, subset):
    names = {
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "all": [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"],
    }[subset]
    images = np.concatenate([batches[n][b"data"] for n in names])
    target = np.concatenate([batches[n][b"labels"] for n in names])
    return images.reshape(-1, 3, 32, 32), target


@pytest.mark.parametrize("subset, n_samples", [("train", 10), ("test", 2), ("all", 12)])
@pytest.mark.parametrize("subfolder", ["cifar-10/cifar-10-batches-py", "", "cifar-10"])
def test_fetch_cifar10(tmp_path, subset, n_samples, subfolder):
    batches = make_cifar_batches()
    write_cifar_batches(tmp_path / subfolder, batches)
    bunch = fetch_cifar10(data_home=tmp_path, subset=subset, download_if_missing=False)
    images, target = expected_cifar(batches, subset)

    assert bunch.data.shape == (n_samples, 3072)
    assert bunch.data.dtype == np.float32
    assert bunch.data.min() >= 0 and bunch.data.max() <= 1
    np.testing.assert_allclose(bunch.data, images.reshape(n_samples, -1) / 255)
    assert bunch.images.shape == (n_samples, 3, 32, 32)
    assert bunch.images.dtype == np.uint8
    np.testing.assert_array_equal(bunch.images, images)
    assert bunch.target.dtype == np.int64
    np.testing.assert_array_equal(bunch.target, target)
    assert bunch.image_shape == (3, 32, 32)
    assert bunch.target_names[0] == "airplane" and bunch.target_names[9] == "truck"
    assert "Krizhevsky" in bunch.DESCR

    X, y = fetch_cifar10(
        data_home=tmp_path, subset=subset, return_X_y=True, download_if_missing=False
    )
    np.testing.assert_array_equal(X, bunch.data)
    np.testing.assert_array_equal(y, bunch.target)


def test_fetch_cifar10_memory(tmp_path):
    # The images in uint8 and the data in float32 are what is returned; the
    # batches read are freed before the data are computed (kept, they added
    # 147 MiB to the 733 MiB returned for the 50,000 training images).
    rng = np.random.default_rng(0)
    batches = {
        name: {
            b"data": rng.integers(0, 256, (500, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, 500).tolist(),
        }
        for name in [f"data_batch_{i}" for i in range(1, 6)]
    }
    write_cifar_batches(tmp_path, batches)
    tracemalloc.start()
    try:
        bunch = fetch_cifar10(data_home=tmp_path, download_if_missing=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    returned = bunch.data.nbytes + bunch.images.nbytes + bunch.target.nbytes
    assert peak < 1.05 * returned


def test_fetch_cifar10_env_dir(tmp_path, monkeypatch):
    write_cifar_batches(tmp_path / "env" / "cifar-10-batches-py", make_cifar_batches())
    monkeypatch.setenv("SKAE_DATA", str(tmp_path / "env"))
    X, _ = fetch_cifar10(subset="test", return_X_y=True, download_if_missing=False)
    assert X.shape == (2, 3072)


def test_fetch_cifar10_from_archive(tmp_path, monkeypatch):
    batches = make_cifar_batches()
    source, cache = tmp_path / "source", tmp_path / "cache"
    source.mkdir()
    evil = [
        ("../evil", b"x"),
        (str(tmp_path / "evil_absolute"), b"x"),
        ("cifar-10-batches-py/../../evil_parent", b"x"),
        ("cifar-10-batches-py/other", b"x"),
    ]
    archive = cifar_tar_bytes(batches, evil)
    (source / "cifar-10-python.tar.gz").write_bytes(archive)
    monkeypatch.setattr(datasets, "_CIFAR10_MD5", hashlib.md5(archive).hexdigest())
    monkeypatch.setenv("SKAE_DATA", str(source))

    bunch = fetch_cifar10(data_home=cache, subset="all", download_if_missing=False)
    np.testing.assert_array_equal(bunch.images, expected_cifar(batches, "all")[0])
    # Only the batches were extracted, into the cache; the archive is kept.
    assert sorted(os.listdir(cache / "cifar-10" / "cifar-10-batches-py")) == sorted(
        batches
    )
    assert os.listdir(cache) == ["cifar-10"]
    assert os.listdir(cache / "cifar-10") == ["cifar-10-batches-py"]
    assert sorted(os.listdir(tmp_path)) == ["cache", "source"]
    assert (source / "cifar-10-python.tar.gz").is_file()


def test_fetch_cifar10_verifies_a_local_archive(tmp_path, monkeypatch):
    # A byte flipped in a member: tarfile stops at the end-of-archive
    # marker, before the gzip trailer's CRC would catch it, so the damaged
    # batches were extracted into the cache and returned without a word.
    batches = make_cifar_batches()
    archive = cifar_tar_bytes(batches)
    monkeypatch.setattr(datasets, "_CIFAR10_MD5", hashlib.md5(archive).hexdigest())
    damaged = bytearray(archive)
    damaged[len(damaged) // 2] ^= 0xFF
    source, cache = tmp_path / "source", tmp_path / "cache"
    source.mkdir()
    path = source / "cifar-10-python.tar.gz"
    path.write_bytes(damaged)
    monkeypatch.setenv("SKAE_DATA", str(source))
    msg = (
        re.escape(str(path)) + r" is truncated or corrupt \(its MD5 checksum is "
        rf"{hashlib.md5(damaged).hexdigest()}, expected {datasets._CIFAR10_MD5}"
    )
    with pytest.raises(ValueError, match=msg):
        fetch_cifar10(data_home=cache, subset="all", download_if_missing=False)
    # Nothing was extracted to be found by the next fetch.
    assert not (cache / "cifar-10" / "cifar-10-batches-py").exists()


def test_fetch_cifar10_downloads_and_verifies(tmp_path, monkeypatch):
    batches = make_cifar_batches()
    archive = cifar_tar_bytes(batches)
    monkeypatch.setattr(datasets, "_CIFAR10_MD5", hashlib.md5(archive).hexdigest())
    requested = serve(monkeypatch, {datasets._CIFAR10_URL: archive})

    X, _ = fetch_cifar10(data_home=tmp_path, subset="test", return_X_y=True)
    np.testing.assert_array_equal(X * 255, batches["test_batch"][b"data"])
    # The downloaded archive is removed once extracted; the batches stay.
    assert os.listdir(tmp_path / "cifar-10") == ["cifar-10-batches-py"]
    fetch_cifar10(data_home=tmp_path, subset="train")
    assert requested == [datasets._CIFAR10_URL]


def test_fetch_cifar10_checksum_mismatch(tmp_path, monkeypatch):
    serve(monkeypatch, {datasets._CIFAR10_URL: b"not the archive"})
    with pytest.raises(OSError, match="MD5 checksum of cifar-10-python.tar.gz"):
        fetch_cifar10(data_home=tmp_path)
    assert os.listdir(tmp_path / "cifar-10") == []


@pytest.mark.parametrize(
    "cut",
    [lambda archive: archive[: len(archive) // 2], lambda archive: b"x" * 100],
    ids=["truncated", "not_gzip"],
)
def test_fetch_cifar10_damaged_archive(tmp_path, cut):
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(cut(cifar_tar_bytes(make_cifar_batches())))
    msg = re.escape(str(path)) + r" is truncated or corrupt \(.*delete it"
    with pytest.raises(ValueError, match=msg):
        fetch_cifar10(data_home=tmp_path, subset="test", download_if_missing=False)


def test_fetch_cifar10_concurrent_downloads(tmp_path, monkeypatch):
    # Two processes fetch at once (the ranks of a torchrun job): both have
    # downloaded the archive when the first extracts it and removes it; the
    # second then extracts. Each must extract the archive it downloaded.
    batches = make_cifar_batches()
    archive = cifar_tar_bytes(batches)
    monkeypatch.setattr(datasets, "_CIFAR10_MD5", hashlib.md5(archive).hexdigest())
    requested = serve(monkeypatch, {datasets._CIFAR10_URL: archive})
    extract = datasets._extract_cifar_batches
    both_downloaded, first_done = threading.Barrier(2), threading.Event()

    def extract_in_turn(archive, cache):
        both_downloaded.wait(timeout=10)
        if threading.current_thread().name == "second":
            first_done.wait(timeout=10)
        extract(archive, cache)

    monkeypatch.setattr(datasets, "_extract_cifar_batches", extract_in_turn)
    results = {}

    def fetch(name):
        try:
            results[name] = fetch_cifar10(
                data_home=tmp_path, subset="test", return_X_y=True
            )
        except Exception as exc:
            results[name] = exc
        first_done.set()

    threads = [
        threading.Thread(target=fetch, args=(name,), name=name)
        for name in ["first", "second"]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    for name in ["first", "second"]:
        assert not isinstance(results[name], Exception), results[name]
        np.testing.assert_array_equal(
            results[name][0] * 255, batches["test_batch"][b"data"]
        )
    assert len(requested) == 2
    assert os.listdir(tmp_path / "cifar-10") == ["cifar-10-batches-py"]


def make_read_only(monkeypatch, directory):
    """Refuse to create anything in ``directory``, as chmod 0o555 does.

    Patched rather than set with chmod, which does not bind root.
    """
    mkdir, open_ = os.mkdir, os.open

    def refuse(path):
        if Path(path).parent == directory:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))

    def read_only_mkdir(path, *args, **kwargs):
        refuse(path)
        return mkdir(path, *args, **kwargs)

    def read_only_open(path, flags, *args, **kwargs):
        if flags & os.O_CREAT:
            refuse(path)
        return open_(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", read_only_mkdir)
    monkeypatch.setattr(os, "open", read_only_open)


@pytest.mark.parametrize(
    "where", ["data_home", "batch_dir", "download", "download_mnist"]
)
def test_fetch_read_only_data_home(tmp_path, monkeypatch, where):
    # A bare "PermissionError: [Errno 13] Permission denied: '.../cifar-10'"
    # from deep inside the fetcher, which said neither that data_home must
    # be writable nor what to do.
    archive = cifar_tar_bytes(make_cifar_batches())
    monkeypatch.setattr(datasets, "_CIFAR10_MD5", hashlib.md5(archive).hexdigest())
    arrays = make_idx_set(0)
    files = {
        f"{name}.gz": gzip.compress(idx_bytes(array)) for name, array in arrays.items()
    }
    md5 = {name: hashlib.md5(content).hexdigest() for name, content in files.items()}
    monkeypatch.setattr(datasets, "_MNIST", datasets._MNIST._replace(md5=md5))
    served = {datasets._MNIST.base_url + name: c for name, c in files.items()}
    serve(monkeypatch, {datasets._CIFAR10_URL: archive, **served})
    if where in ("data_home", "batch_dir"):
        (tmp_path / "cifar-10-python.tar.gz").write_bytes(archive)
    read_only, folder = tmp_path, "cifar-10"
    if where == "batch_dir":
        read_only = tmp_path / "cifar-10" / "cifar-10-batches-py"
        read_only.mkdir(parents=True)
    elif where == "download_mnist":
        folder = "mnist"
    make_read_only(monkeypatch, read_only)
    hint = ""
    if where in ("data_home", "batch_dir"):
        hint = f" (the archive is still found if SKAE_DATA names {tmp_path})"
    msg = (
        re.escape(
            f"Cannot write into {tmp_path / folder}: [Errno 13] Permission "
            f"denied: '{read_only}{os.sep}"
        )
        + r"[^']+"
        + re.escape(
            f"'. Fetched files are kept there, under data_home ({tmp_path}): "
            f"pass a data_home you can write to{hint}."
        )
    )
    fetch = fetch_mnist if where == "download_mnist" else fetch_cifar10
    with pytest.raises(PermissionError, match=f"^{msg}$"):
        fetch(data_home=tmp_path, subset="test")


def test_fetch_cifar10_offline_error(tmp_path):
    msg = (
        r"CIFAR-10 needs the batches test_batch \(in cifar-10-batches-py/ or "
        r"not\) or cifar-10-python\.tar\.gz in one of these directories: .*"
        + re.escape(str(tmp_path))
        + r".*download_if_missing=False"
    )
    with pytest.raises(OSError, match=msg):
        fetch_cifar10(data_home=tmp_path, subset="test", download_if_missing=False)


@pytest.mark.parametrize("cut", [-100, 0], ids=["truncated", "empty"])
def test_fetch_cifar10_damaged_batch(tmp_path, cut):
    write_cifar_batches(tmp_path, make_cifar_batches())
    path = tmp_path / "test_batch"
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(ValueError, match=r"test_batch is truncated or corrupt"):
        fetch_cifar10(data_home=tmp_path, subset="test", download_if_missing=False)


def test_fetch_cifar10_damaged_byte_in_a_batch(tmp_path):
    # A module name no longer UTF-8: the unpickler raised UnicodeDecodeError,
    # which named neither the file nor what to do.
    write_cifar_batches(tmp_path, make_cifar_batches())
    path = tmp_path / "test_batch"
    content = bytearray(path.read_bytes())
    content[content.index(b"numpy")] = 0xFF
    path.write_bytes(content)
    msg = re.escape(str(path)) + r" is truncated or corrupt \(.*codec can't decode"
    with pytest.raises(ValueError, match=msg):
        fetch_cifar10(data_home=tmp_path, subset="test", download_if_missing=False)


class Python2Pickler(pickle._Pickler):
    """Pickle bytes as Python 2 pickles its str, which Python 3 reads as bytes."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_python2_str(self, obj):
        self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_python2_str


def python2_dumps(obj):
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "dumps",
    [
        python2_dumps,
        *(lambda obj, p=p: pickle.dumps(obj, protocol=p) for p in range(6)),
    ],
    ids=["python2", *(f"protocol{p}" for p in range(6))],
)
@pytest.mark.parametrize("str_keys", [False, True])
def test_fetch_cifar10_reads_batches_pickled_again(tmp_path, dumps, str_keys):
    # Python 3 pickles bytes with _codecs.encode (b"" with bytes()) in
    # protocols 0 to 2, and arrays with _frombuffer in protocol 5: such a
    # batch was refused with "Refusing to load _codecs.encode: a CIFAR-10
    # batch holds only numpy arrays and lists". One with str keys, 'data'
    # and 'labels', was "not a CIFAR-10 batch (KeyError(b'data'))".
    batch = make_cifar_batches()["test_batch"]
    batch[b"batch_label"] = b""
    keys = {key: key.decode() if str_keys else key for key in batch}
    content = dumps({keys[key]: value for key, value in batch.items()})
    (tmp_path / "test_batch").write_bytes(content)
    bunch = fetch_cifar10(data_home=tmp_path, subset="test", download_if_missing=False)
    np.testing.assert_array_equal(bunch.images.reshape(N_BATCH, -1), batch[b"data"])
    np.testing.assert_array_equal(bunch.target, batch[b"labels"])


def test_fetch_cifar10_refuses_foreign_pickles(tmp_path):
    batches = make_cifar_batches()
    batches["test_batch"][b"labels"] = OrderedDict()
    write_cifar_batches(tmp_path, batches)
    with pytest.raises(
        pickle.UnpicklingError, match="Refusing to load collections.OrderedDict"
    ):
        fetch_cifar10(data_home=tmp_path, subset="test", download_if_missing=False)


@pytest.mark.parametrize(
    "batch, msg",
    [
        ([1, 2], r"expected a dict with keys b'data' and b'labels'; got list"),
        ({b"data": np.zeros((2, 3072), np.uint8)}, "got dict"),
        (
            {b"data": np.zeros((2, 784), np.uint8), b"labels": [0, 1]},
            r"got uint8 data of shape \(2, 784\) and int64 labels of shape \(2,\)",
        ),
        (
            {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]},
            r"n integer labels in 0\.\.9",
        ),
        (
            {b"data": np.zeros((2, 3072)), b"labels": [0, 1]},
            r"got float64 data",
        ),
        # Ragged lists: numpy's "setting an array element with a sequence",
        # which named no file.
        ({b"data": [[0], [1, 2]], b"labels": [0, 1]}, r"got dict \(ValueError"),
        (
            {b"data": np.zeros((2, 3072), np.uint8), b"labels": [[0], [1, 2]]},
            r"got dict \(ValueError",
        ),
    ],
)
def test_fetch_cifar10_bad_batch(tmp_path, batch, msg):
    (tmp_path / "test_batch").write_bytes(pickle.dumps(batch, protocol=4))
    # What to do was not said.
    msg += r".*\. Delete the file and fetch it again\.$"
    with pytest.raises(ValueError, match=msg):
        fetch_cifar10(data_home=tmp_path, subset="test", download_if_missing=False)


# Synthetic manifolds


MAKERS = [(make_embedded_moons, 2), (make_embedded_swiss_roll, 3)]


@pytest.mark.parametrize("make, n_dims", MAKERS)
def test_make_embedded_shapes_and_reproducibility(make, n_dims):
    X, y = make(50, n_features=7, random_state=0)
    assert X.shape == (50, 7) and X.dtype == np.float64
    assert y.shape == (50,)
    X_again, y_again = make(50, n_features=7, random_state=0)
    np.testing.assert_array_equal(X, X_again)
    np.testing.assert_array_equal(y, y_again)
    assert not np.allclose(X, make(50, n_features=7, random_state=1)[0])


def test_make_embedded_targets():
    _, y = make_embedded_moons(50, random_state=0)
    assert set(np.unique(y)) == {0, 1}
    _, t = make_embedded_swiss_roll(50, random_state=0)
    assert t.dtype == np.float64 and t.min() >= 1.5 * np.pi


@pytest.mark.parametrize("make, n_dims", MAKERS)
def test_make_embedded_is_an_isometry_plus_noise(make, n_dims):
    # Without noise, the embedded data span exactly the manifold's dimensions.
    X, _ = make(300, n_features=10, noise=0.0, random_state=0)
    assert np.linalg.matrix_rank(X - X.mean(axis=0), tol=1e-8) == n_dims

    # The noise adds variance noise**2 in every direction.
    X, _ = make(3000, n_features=10, noise=0.1, random_state=0)
    residual_variance = PCA().fit(X).explained_variance_[n_dims:]
    np.testing.assert_allclose(residual_variance, 0.01, rtol=0.15)


def test_make_embedded_keeps_distances():
    from sklearn.datasets import make_swiss_roll
    from sklearn.metrics import pairwise_distances

    X, _ = make_embedded_swiss_roll(100, n_features=10, noise=0.0, random_state=0)
    X_roll, _ = make_swiss_roll(100, random_state=np.random.RandomState(0))
    np.testing.assert_allclose(pairwise_distances(X), pairwise_distances(X_roll))


def test_pca_fails_on_embedded_swiss_roll():
    X, _ = make_embedded_swiss_roll(1000, random_state=0)
    pca = PCA(n_components=2).fit(X)
    assert pca.explained_variance_ratio_.sum() < 0.8


def test_make_embedded_leaves_global_rng_alone():
    # Reading numpy's legacy global state is the point of this test.
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    make_embedded_moons(10, random_state=0)
    make_embedded_swiss_roll(10, random_state=0)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002


@pytest.mark.parametrize(
    "make, kwargs, msg",
    [
        (make_embedded_moons, {"n_samples": 0}, "n_samples must be an integer >= 1"),
        (make_embedded_moons, {"n_samples": 2.5}, "got 2.5"),
        (
            make_embedded_moons,
            {"n_features": 1},
            "n_features must be an integer >= 2, the dimension of the moons "
            "it embeds; got 1",
        ),
        (
            make_embedded_swiss_roll,
            {"n_features": 2},
            "n_features must be an integer >= 3, the dimension of the swiss "
            "roll it embeds; got 2",
        ),
        (
            make_embedded_swiss_roll,
            {"noise": -1.0},
            "noise must be a finite number >= 0",
        ),
        (make_embedded_swiss_roll, {"noise": float("nan")}, "got nan"),
        (make_embedded_swiss_roll, {"noise": float("inf")}, "got inf"),
        (make_embedded_moons, {"n_samples": True}, "got True"),
        (make_embedded_swiss_roll, {"n_samples": True}, "got True"),
    ],
)
def test_make_embedded_validation(make, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        make(**kwargs)


@pytest.mark.parametrize("make, n_dims", MAKERS)
def test_make_embedded_one_sample(make, n_dims):
    X, y = make(1, random_state=0)
    assert X.shape == (1, 20) and y.shape == (1,)


@pytest.mark.parametrize(
    "function",
    [
        fetch_cifar10,
        fetch_fashion_mnist,
        fetch_mnist,
        make_embedded_moons,
        make_embedded_swiss_roll,
    ],
    ids=lambda function: function.__name__,
)
def test_docstrings_are_filled(function):
    # The sections the fetchers and generators share are written once in
    # datasets._DOCS and filled in; each parameter is still documented once.
    doc = function.__doc__
    assert "%(" not in doc
    for name in inspect.signature(function).parameters:
        assert len(re.findall(rf"^    {name} : ", doc, re.M)) == 1, name
