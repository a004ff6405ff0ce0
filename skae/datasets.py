"""Image benchmarks and synthetic manifolds to train and compare autoencoders.

The fetchers return MNIST, Fashion-MNIST and CIFAR-10 the way scikit-learn's
``fetch_*`` functions do: a :class:`~sklearn.utils.Bunch`, or ``(X, y)`` with
``return_X_y=True``. They read the files as their publishers distribute them,
from a local directory when one holds them, and otherwise download them once
into :func:`get_data_home` with their checksums verified.

The ``make_embedded_*`` generators hide a low-dimensional nonlinear manifold in
many dimensions, where a nonlinear reduction can do what PCA cannot.
"""

import contextlib
import errno
import gzip
import hashlib
import http.client
import logging
import math
import numbers
import os
import pickle
import re
import secrets
import shutil
import struct
import tarfile
import textwrap
import time
import warnings
import zlib
from pathlib import Path
from typing import NamedTuple
from urllib.request import urlopen

import numpy as np
from sklearn.datasets import make_moons, make_swiss_roll
from sklearn.utils import Bunch, check_random_state

from skae._validation import check_flag, user_stacklevel

logger = logging.getLogger(__name__)

_SUBSETS = ("train", "test", "all")
_DOWNLOAD_TIMEOUT = 60  # seconds without data before a download is abandoned
# A part file untouched for this long is a killed fetch's, removed by the next
# one: a live download writes at least every _DOWNLOAD_TIMEOUT seconds, and an
# extraction within seconds.
_STALE_PART_AGE = 3600  # seconds

# The IDX files of MNIST and Fashion-MNIST, by subset: (images, labels).
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
_IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension

# The mean pixel, scaled to [0, 1], of each dataset's images by subset. The
# two datasets' files have the same names and checksums guard only downloads,
# so a file of one put where the other's are looked for is told apart by its
# pixels. MNIST's are the published means (0.1307 is the one torchvision's
# MNIST examples normalise with); Fashion-MNIST's are
# fetch_fashion_mnist(subset=...).data.mean() on the files of Debian's
# dataset-fashion-mnist (0.28604 and 0.28685).
_MEAN_PIXEL = {
    "MNIST": {"train": 0.1307, "test": 0.1325},
    "Fashion-MNIST": {"train": 0.2860, "test": 0.2868},
}
# Halfway between the two, 0.08 from each; a file on the other side of it
# from its dataset is warned about, not refused: other sets in MNIST's format
# (KMNIST...) share the file names and may be loaded on purpose.
_MEAN_PIXEL_BOUND = 0.21
# Enough for the mean to be a sign of the dataset: the mean of 1,000 images
# drawn at random from Fashion-MNIST's never fell below 0.27 in 200 draws.
_MEAN_PIXEL_MIN_IMAGES = 1000


class _IdxDataset(NamedTuple):
    """Where an IDX image dataset comes from and how to describe it."""

    name: str
    folder: str
    base_url: str
    md5: dict  # of the published ``.gz`` files, as torchvision lists them
    system_dirs: tuple
    install_hint: str
    target_names: tuple
    descr: str


_MNIST = _IdxDataset(
    name="MNIST",
    folder="mnist",
    base_url="https://ossci-datasets.s3.amazonaws.com/mnist/",
    md5={
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    system_dirs=(),
    install_hint="",
    target_names=tuple(str(digit) for digit in range(10)),
    descr="""\
MNIST handwritten digits
------------------------
70,000 grayscale images of 28x28 pixels, handwritten digits 0 to 9:
60,000 for training and 10,000 for testing.

Source: http://yann.lecun.com/exdb/mnist/ (files fetched from the torchvision
mirror https://ossci-datasets.s3.amazonaws.com/mnist/).

Y. LeCun, L. Bottou, Y. Bengio and P. Haffner. "Gradient-based learning
applied to document recognition." Proceedings of the IEEE, 86(11),
2278-2324, 1998.
""",
)

_FASHION_MNIST = _IdxDataset(
    name="Fashion-MNIST",
    folder="fashion-mnist",
    base_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    md5={
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    install_hint=(
        " On Debian and Ubuntu, `apt-get install dataset-fashion-mnist` puts "
        "them in /usr/share/datasets/fashion-mnist."
    ),
    target_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    descr="""\
Fashion-MNIST
-------------
70,000 grayscale images of 28x28 pixels of Zalando articles in 10 classes:
60,000 for training and 10,000 for testing. A drop-in replacement for MNIST
that linear methods find harder.

Source: https://github.com/zalandoresearch/fashion-mnist

H. Xiao, K. Rasul and R. Vollgraf. "Fashion-MNIST: a Novel Image Dataset for
Benchmarking Machine Learning Algorithms." arXiv:1708.07747, 2017.
""",
)

_CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
_CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
_CIFAR10_FOLDER = "cifar-10"
_CIFAR10_BATCH_DIR = "cifar-10-batches-py"
_CIFAR10_BATCHES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
_CIFAR10_TARGET_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_CIFAR10_DESCR = """\
CIFAR-10
--------
60,000 color images of 32x32 pixels in 10 classes, 6,000 per class:
50,000 for training (five batches) and 10,000 for testing.

Source: https://www.cs.toronto.edu/~kriz/cifar.html

A. Krizhevsky. "Learning Multiple Layers of Features from Tiny Images."
Technical report, University of Toronto, 2009.
"""


# The sections several functions document alike, written once: a docstring
# names them on a line of their own as ``%(name)s``, and _fill_doc fills them
# in with the facts that differ (a dataset's folder and sizes, a manifold).
_DOCS = {
    "table": """\
=================   ==============
Classes                         10
Samples total       %(n_total)14d
Samples train       %(n_train)14d
Samples test        %(n_test)14d
Dimensionality      %(dimensionality)14s
Features             real, [0, 1]
=================   ==============""",
    "idx_files": """\
The four IDX files (``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``, each gzipped or not) are looked for in the
``data_home`` argument, then in the ``SKAE_DATA`` directory (in each, the
``%(folder)s`` subfolder before the directory itself; MNIST and
Fashion-MNIST use the same file names, so keep each in its own subfolder),""",
    "parameters": """\
Parameters
----------
data_home : str or path-like, default=None
    A directory to look in first, for the files in its ``%(folder)s``
    subfolder or in itself; also where downloads go (into ``%(folder)s``).
    If None, downloads go to :func:`get_data_home`.

subset : {'train', 'test', 'all'}, default='train'
    The published split to return; 'all' is the training set followed by
    the test set.

return_X_y : bool, default=False
    If True, return ``(data, target)`` instead of a Bunch.

download_if_missing : bool, default=True
    If False, raise an OSError instead of downloading files that are
    not found locally.""",
    "returns": """\
Returns
-------
data : :class:`~sklearn.utils.Bunch`
    Dictionary-like object, with the following attributes.

    data : ndarray of shape (n_samples, %(n_features)d), dtype float32
        The images as flat rows%(row_order)s, scaled to [0, 1].
    target : ndarray of shape (n_samples,), dtype int64
        The class, 0 to 9.
    images : ndarray of shape (n_samples, %(images_shape)s), dtype uint8
        The raw images%(images_order)s.
    image_shape : tuple
        ``%(image_shape)s``, the ``(C, H, W)`` shape of one image.
    target_names : list of str
        The class names, from ``'%(first_name)s'`` to ``'%(last_name)s'``.
    DESCR : str
        Description of the dataset, with its source and citation.

(data, target) : tuple if ``return_X_y`` is True

Raises
------
OSError
    If the files are found nowhere and cannot be downloaded, a download
    fails its checksum, or the files to keep cannot be written into
    data_home (a PermissionError then names it).
ValueError
    If a file found is truncated, corrupt or not of the expected format;
    the message names it.""",
    "idx_warns": f"""\
Warns
-----
UserWarning
    If an images file of {_MEAN_PIXEL_MIN_IMAGES:,} images or more has a mean pixel
    on Fashion-MNIST's side of {_MEAN_PIXEL_BOUND} when MNIST is fetched, or on
    MNIST's when Fashion-MNIST is (scaled to [0, 1], MNIST's is about 0.13
    and Fashion-MNIST's about 0.29). The two datasets' files have the same
    names, so one put in the other's folder would otherwise be read as it
    without a word; the warning names the file. Other datasets in MNIST's
    format may warn too.""",
    "embedding": """\
n_features : int, default=20
    The number of dimensions to embed the %(manifold)s in; at least %(n_dims)d.

noise : float, default=0.05
    The standard deviation of the Gaussian noise added to each feature.

random_state : int, RandomState instance or None, default=None
    Determines the %(manifold)s, the embedding and the noise. Pass an int for
    reproducible output across calls.

Returns
-------
X : ndarray of shape (n_samples, n_features), dtype float64
    The points.""",
}
_PLACEHOLDER = re.compile(r"^( *)%\((\w+)\)s$", re.MULTILINE)


def _fill_doc(**facts):
    """Fill the shared sections into the docstring of the decorated function.

    A line ``%(name)s`` becomes ``_DOCS[name]`` at the line's indentation,
    filled in with ``facts``.
    """

    def decorate(function):
        function.__doc__ = _PLACEHOLDER.sub(
            lambda m: textwrap.indent(_DOCS[m[2]] % facts, m[1]),
            function.__doc__,
        )
        return function

    return decorate


def _fetcher_doc(folder, image_shape, n_train, n_test, target_names):
    """Fill a fetcher's docstring with the facts of its dataset."""
    channels, height, width = image_shape
    n_features = channels * height * width
    color = channels == 3
    return _fill_doc(
        folder=folder,
        n_train=n_train,
        n_test=n_test,
        n_total=n_train + n_test,
        dimensionality=f"{n_features} ({channels}x{height}x{width})",
        n_features=n_features,
        # Grayscale images are stored without their single channel.
        images_shape=", ".join(map(str, image_shape if color else image_shape[1:])),
        image_shape=image_shape,
        # Indented as the line it continues in the Returns section.
        row_order=", channel-first\n        (all red values, then green, then blue)"
        if color
        else "",
        images_order=", channel-first" if color else "",
        first_name=target_names[0],
        last_name=target_names[-1],
    )


def _data_home_path(data_home=None):
    """Return the data directory :func:`get_data_home` uses, without creating it."""
    if data_home is None:
        # Set but empty counts as unset, as for PATH-like variables.
        data_home = os.environ.get("SKAE_DATA") or os.path.join("~", "skae_data")
    try:
        path = os.fspath(data_home)
    except TypeError:
        raise TypeError(
            f"data_home must be a path (str or path-like) or None, got {data_home!r}."
        ) from None
    if not path:
        # "" would search, and download into, the current directory.
        raise ValueError(
            "data_home is an empty path: pass None for the default (SKAE_DATA, "
            "else ~/skae_data), or a directory ('.' for the current one)."
        )
    return os.path.expanduser(path)


def get_data_home(data_home=None):
    """Return the path of the skae data directory, creating it if needed.

    Fetchers download their files into this directory, each dataset in its
    own subfolder, so that they are downloaded only once.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The data directory. If None, the ``SKAE_DATA`` environment variable
        if it is set and not empty, otherwise ``~/skae_data``. ``~`` is expanded to the
        user's home folder. An empty path raises a ValueError (``'.'`` is the
        current directory), and one that is no path a TypeError.

    Returns
    -------
    data_home : str
        The path of the data directory.

    See Also
    --------
    sklearn.datasets.get_data_home : The same for scikit-learn's datasets.

    Examples
    --------
    >>> import os
    >>> import tempfile
    >>> from skae.datasets import get_data_home
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = get_data_home(os.path.join(tmp, "skae_data"))
    ...     os.path.isdir(path)
    True
    """
    data_home = _data_home_path(data_home)
    os.makedirs(data_home, exist_ok=True)
    return data_home


def _search_dirs(data_home, folder, system_dirs=()):
    """Return the directories to search for a dataset's files, in order.

    The ``data_home`` argument, then ``SKAE_DATA``, then the system
    directories, then the cache; in each of the first two, the dataset's
    subfolder before the directory itself.
    """
    # First, as it refuses a data_home that is no path, by name.
    cache = Path(_data_home_path(data_home)) / folder
    dirs = []
    # SKAE_DATA set but empty counts as unset, as in get_data_home.
    for root in (data_home, os.environ.get("SKAE_DATA") or None):
        if root is not None:
            root = Path(os.path.expanduser(os.fspath(root)))
            dirs += [root / folder, root]
    dirs += [Path(d) for d in system_dirs]
    dirs.append(cache)
    return list(dict.fromkeys(dirs))


def _check_subset(subset):
    # A str first: `in` compares an array elementwise, and raised numpy's
    # "truth value of an array is ambiguous".
    if not isinstance(subset, str) or subset not in _SUBSETS:
        raise ValueError(
            f"subset must be one of {', '.join(map(repr, _SUBSETS))}; got {subset!r}."
        )
    return _SUBSETS[:2] if subset == "all" else (subset,)


def _find_idx_files(directory, names):
    """Return the paths of ``names`` in ``directory``, gzipped or not, or None."""
    paths = []
    for name in names:
        for candidate in (directory / f"{name}.gz", directory / name):
            if candidate.is_file():
                paths.append(candidate)
                break
        else:
            return None
    return paths


def _corrupt_file(path, exc):
    """Return the error for a data file that ``exc`` found damaged."""
    return ValueError(
        f"{path} is truncated or corrupt ({exc}); delete it and fetch it again."
    )


def _read_idx(path, magic):
    """Read an IDX file of unsigned bytes, gzipped or not, into an array.

    Parameters
    ----------
    path : Path
        The file, gzip-compressed or not: told by its first bytes, whatever
        its name says.
    magic : int
        The expected magic number: ``0x00000803`` for images, ``0x00000801``
        for labels. Its last byte is the number of dimensions.

    Returns
    -------
    array : ndarray of uint8
        The array, with the shape the header gives.
    """
    n_dims = magic & 0xFF
    # By content, not by name: a browser may save a .gz decompressed under
    # its name (gzip refused it as "not a gzipped file"), and a compressed
    # copy may have lost its .gz.
    with open(path, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as f:
            found = int.from_bytes(f.read(4), "big")
            if found != magic:
                raise ValueError(
                    f"{path} is not an IDX file of the expected kind: its "
                    f"magic number is 0x{found:08X}, expected 0x{magic:08X}. "
                    "Check that the file holds what its name says."
                )
            header = f.read(4 * n_dims)
            if len(header) < 4 * n_dims:
                raise EOFError("the header ends early")
            shape = struct.unpack(f">{n_dims}I", header)
            n_bytes = math.prod(shape)
            if not n_bytes:
                raise ValueError(f"{path}: the header gives shape {shape}: no data.")
            # Before allocating what the header claims: the file's own size
            # (a gzip file's last 4 bytes hold the uncompressed size, mod
            # 2**32, of its last member: the whole file's if it has one).
            n_header = 4 + 4 * n_dims
            if compressed:
                n_read = n_bytes
                if _uncompressed_size(path) != (n_header + n_bytes) % 2**32:
                    # Several members (gzip files concatenated), valid, or
                    # a file that does not match its header: counted without
                    # keeping the data, up to a byte past the header's size.
                    n_read = _count_bytes(f, n_bytes + 1)
                    f.seek(n_header)
            else:
                n_read = path.stat().st_size - n_header
            trailing = n_read > n_bytes
            if n_read == n_bytes:
                # Read straight into a writable buffer: one copy of the data,
                # and the returned array can be modified in place.
                buffer = bytearray(n_bytes)
                n_read = f.readinto(buffer)
                trailing = bool(f.read(1))
    # The header or a gzip stream cut short, or a damaged gzip stream.
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise _corrupt_file(path, exc) from exc
    if n_read != n_bytes or trailing:
        size = "more" if trailing else f"only {n_read}"
        raise ValueError(
            f"{path}: the header gives shape {shape}, i.e. {n_bytes} bytes "
            f"of data, but the file holds {size} bytes. The file is truncated "
            "or corrupt; delete it and fetch it again."
        )
    return np.frombuffer(buffer, dtype=np.uint8).reshape(shape)


def _count_bytes(f, limit):
    """Return how many bytes are left in ``f``, counting up to ``limit``."""
    n = 0
    while n < limit and (chunk := f.read(min(1 << 20, limit - n))):
        n += len(chunk)
    return n


def _uncompressed_size(path):
    """Return a gzip file's uncompressed size, modulo 2**32, from its trailer."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() < 4:
            raise EOFError("the gzip file ends early")
        f.seek(-4, os.SEEK_END)
        return int.from_bytes(f.read(4), "little")


def _part_path(path):
    """Return a name of this call's own for a part file or folder of ``path``."""
    return path.with_name(f"{path.name}.part_{secrets.token_hex(8)}")


def _remove_stale_parts(path):
    """Remove the part files and folders of ``path`` that killed fetches left.

    A fetch killed (SIGKILL, a crash) cannot remove its part files, which
    piled up, up to 163 MiB each. Only skae's own are removed, named by
    _part_path, and only once untouched for _STALE_PART_AGE, so that those of
    a concurrent fetch are left alone.
    """
    # fetch_cifar10 named its folder with tempfile before: 8 characters.
    own = re.compile(re.escape(path.name) + r"\.part_(?:[0-9a-f]{16}|([0-9a-z_]{8}))")
    try:
        with os.scandir(path.parent) as entries:
            entries = list(entries)
    except OSError:
        return
    for entry in entries:
        match = own.fullmatch(entry.name)
        if match is None:
            continue
        # Errors are ignored: another fetch may remove the same part first.
        with contextlib.suppress(OSError):
            is_dir = entry.is_dir(follow_symlinks=False)
            mtime = entry.stat(follow_symlinks=False).st_mtime
            if is_dir:
                # A folder's download is written in the part file inside it.
                with os.scandir(entry.path) as inner:
                    mtimes = [e.stat(follow_symlinks=False).st_mtime for e in inner]
                mtime = max([mtime, *mtimes])
            elif match[1] is not None:
                continue
            if time.time() - mtime < _STALE_PART_AGE:
                continue
            if is_dir:
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)


@contextlib.contextmanager
def _part_dir(path):
    """Make a folder of this call's own beside ``path``, removed on exit."""
    _remove_stale_parts(path)
    tmp = _part_path(path)
    tmp.mkdir()
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _atomic_file(path):
    """Open a temporary file beside ``path``, renamed to ``path`` on success.

    The data go to a temporary file that becomes ``path`` only once the block
    completes, so that neither an interrupted write nor a concurrent one
    leaves a corrupt file where the fetchers look; on an error it is removed,
    and one a killed call left is removed by a later one once stale.
    """
    _remove_stale_parts(path)
    tmp = _part_path(path)
    # Created as open() creates a file, with the permissions the umask leaves
    # (mkstemp's are 0o600), so that the users of a shared data directory
    # can read what one of them downloaded; O_EXCL, so that it is this
    # call's own.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _writing_into(cache, archive=None):
    """Name data_home, and what to do, when the block cannot write into ``cache``.

    Creating a folder or a file there raised a bare PermissionError from deep
    inside the fetcher; errors reading ``archive`` are left as they are.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno not in {errno.EACCES, errno.EPERM, errno.EROFS} or (
            archive is not None and exc.filename == os.fspath(archive)
        ):
            raise
        hint = (
            ""
            if archive is None
            else f" (the archive is still found if SKAE_DATA names {archive.parent})"
        )
        raise type(exc)(
            f"Cannot write into {cache}: {exc}. Fetched files are kept there, "
            f"under data_home ({cache.parent}): pass a data_home you can write "
            f"to{hint}."
        ) from exc


def _check_download_allowed(download_if_missing, help_message, what, cache):
    """Raise where the files were looked for, unless they may be downloaded."""
    if not download_if_missing:
        raise OSError(
            f"{help_message} None holds them, and download_if_missing=False; "
            f"pass download_if_missing=True to download {what} into {cache}."
        )


def _download(url, path, md5, hint):
    """Download ``url`` to ``path`` and verify its MD5 checksum.

    ``path`` appears only once complete and verified (see _atomic_file).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    logger.info("Downloading %s to %s", url, path)
    digest = hashlib.md5(usedforsecurity=False)
    with _atomic_file(path) as out:
        try:
            with urlopen(url, timeout=_DOWNLOAD_TIMEOUT) as response:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
        # A response cut short may also raise http.client.IncompleteRead.
        except (OSError, http.client.HTTPException) as exc:
            raise OSError(f"Could not download {url} to {path}: {exc}. {hint}") from exc
        checksum = digest.hexdigest()
        if checksum != md5:
            raise OSError(
                f"The MD5 checksum of {path.name} downloaded from {url} is "
                f"{checksum}, expected {md5}; the file was removed. Fetch it "
                "again; if the mismatch persists, the source has changed."
            )
    return path


def _fetch_idx(dataset, data_home, subset, return_X_y, download_if_missing):
    """Fetch an IDX image dataset described by ``dataset``."""
    subsets = _check_subset(subset)
    check_flag("return_X_y", return_X_y)
    check_flag("download_if_missing", download_if_missing)
    names = [name for s in subsets for name in _IDX_FILES[s]]
    dirs = _search_dirs(data_home, dataset.folder, dataset.system_dirs)
    paths = None
    for directory in dirs:
        paths = _find_idx_files(directory, names)
        if paths is not None:
            break
    else:
        cache = Path(_data_home_path(data_home)) / dataset.folder
        help_message = (
            f"{dataset.name} needs the files {', '.join(names)} (gzipped or "
            f"not) in one of these directories: {', '.join(map(str, dirs))}."
            f"{dataset.install_hint}"
        )
        _check_download_allowed(download_if_missing, help_message, "them", cache)
        paths = [cache / f"{name}.gz" for name in names]
        with _writing_into(cache):
            for path in paths:
                # Files of another subset, or of an interrupted fetch, are
                # already there and verified.
                if not path.is_file():
                    _download(
                        dataset.base_url + path.name,
                        path,
                        dataset.md5[path.name],
                        help_message,
                    )
    images, target = [], []
    for file_subset, images_path, labels_path in zip(
        subsets, paths[::2], paths[1::2], strict=True
    ):
        images.append(_read_idx(images_path, _IDX_IMAGES_MAGIC))
        target.append(_read_idx(labels_path, _IDX_LABELS_MAGIC))
        if images[-1].shape[1:] != (28, 28):
            raise ValueError(
                f"{images_path} holds images of shape {images[-1].shape[1:]}; "
                f"{dataset.name}'s are (28, 28). The file is not of this "
                "dataset; delete it and fetch it again."
            )
        if len(images[-1]) != len(target[-1]):
            raise ValueError(
                f"{images_path} holds {len(images[-1])} images but "
                f"{labels_path} holds {len(target[-1])} labels."
            )
        # Unsigned bytes, so only the top can be out of the 10 classes.
        if target[-1].max() > 9:
            raise ValueError(
                f"{labels_path} holds a label {target[-1].max()}; expected the "
                "classes 0 to 9. The file is corrupt or not of this dataset; "
                "delete it and fetch it again."
            )
        _check_mean_pixel(dataset.name, file_subset, images_path, images[-1])
    images = images[0] if len(images) == 1 else np.concatenate(images)
    target = np.concatenate(target).astype(np.int64)
    return _bunch(
        images,
        target,
        image_shape=(1, *images.shape[1:]),
        target_names=dataset.target_names,
        descr=dataset.descr,
        return_X_y=return_X_y,
    )


def _check_mean_pixel(name, subset, path, images):
    """Warn if the images of ``path`` look like the other dataset's.

    ``name`` is the dataset's, MNIST or Fashion-MNIST, and ``subset`` the
    file's, 'train' or 'test'.
    """
    if len(images) < _MEAN_PIXEL_MIN_IMAGES:
        return
    # Accumulated in float64 over the uint8 array, in numpy's buffered
    # chunks: no float copy of the images (47 MB for the training set).
    mean = images.mean(dtype=np.float64) / 255
    expected = _MEAN_PIXEL[name][subset]
    if (mean > _MEAN_PIXEL_BOUND) == (expected > _MEAN_PIXEL_BOUND):
        return
    other = next(other for other in _MEAN_PIXEL if other != name)
    warnings.warn(
        f"{path} has a mean pixel of {mean:.3f}, where {name}'s {subset} "
        f"images have {expected:.3f} and {other}'s "
        f"{_MEAN_PIXEL[other][subset]:.3f}: it may be {other}'s file, or "
        f"another dataset's. {name} and {other} use the same file names, so "
        "keep each dataset's files in its own folder (mnist/ and "
        "fashion-mnist/ under data_home or SKAE_DATA); if this is the dataset "
        "you meant to load, ignore this warning.",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


def _bunch(images, target, *, image_shape, target_names, descr, return_X_y):
    data = np.divide(images.reshape(len(images), -1), 255, dtype=np.float32)
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        images=images,
        image_shape=image_shape,
        target_names=list(target_names),
        DESCR=descr,
    )


@_fetcher_doc(_MNIST.folder, (1, 28, 28), 60000, 10000, _MNIST.target_names)
def fetch_mnist(
    *, data_home=None, subset="train", return_X_y=False, download_if_missing=True
):
    """Load the MNIST handwritten digits (classification, 10 classes).

    %(table)s

    %(idx_files)s
    then in the cache under :func:`get_data_home`. If none holds them, they
    are downloaded there from the torchvision mirror and their MD5 checksums
    verified.

    %(parameters)s

    %(returns)s

    %(idx_warns)s

    See Also
    --------
    fetch_fashion_mnist : The same format, with pictures of clothes.
    sklearn.datasets.load_digits : 8x8 digits that ship with scikit-learn.

    Examples
    --------
    >>> from skae.datasets import fetch_mnist
    >>> X, y = fetch_mnist(return_X_y=True)  # doctest: +SKIP
    >>> X.shape, X.dtype, y[:5]  # doctest: +SKIP
    ((60000, 784), dtype('float32'), array([5, 0, 4, 1, 9]))
    """
    return _fetch_idx(_MNIST, data_home, subset, return_X_y, download_if_missing)


@_fetcher_doc(
    _FASHION_MNIST.folder, (1, 28, 28), 60000, 10000, _FASHION_MNIST.target_names
)
def fetch_fashion_mnist(
    *, data_home=None, subset="train", return_X_y=False, download_if_missing=True
):
    """Load the Fashion-MNIST images of clothes (classification, 10 classes).

    %(table)s

    %(idx_files)s
    then in ``/usr/share/datasets/fashion-mnist``, where the Debian package
    ``dataset-fashion-mnist`` installs them, then in the cache under
    :func:`get_data_home`. If none holds them, they are downloaded there from
    the publisher and their MD5 checksums verified.

    %(parameters)s

    %(returns)s

    %(idx_warns)s

    See Also
    --------
    fetch_mnist : The same format, with handwritten digits.

    Examples
    --------
    >>> from skae.datasets import fetch_fashion_mnist
    >>> fashion = fetch_fashion_mnist(subset="test")  # doctest: +SKIP
    >>> fashion.data.shape, fashion.target_names[9]  # doctest: +SKIP
    ((10000, 784), 'Ankle boot')
    """
    return _fetch_idx(
        _FASHION_MNIST, data_home, subset, return_X_y, download_if_missing
    )


class _CifarUnpickler(pickle.Unpickler):
    """Unpickle a CIFAR-10 batch, refusing all but what arrays and bytes need.

    Unpickling can run arbitrary code, and these files may come from any of
    the directories searched; a batch needs no more than this to load.
    """

    def find_class(self, module, name):
        # numpy 2 moved numpy.core to numpy._core.
        core_name = f"{module}.{name}".replace("numpy._core.", "numpy.core.")
        if (module, name) in _CIFAR_GLOBALS or core_name in {
            "numpy.core.multiarray._reconstruct",
            # What arrays pickled with protocol 5 are made by.
            "numpy.core.numeric._frombuffer",
        }:
            return super().find_class(module, name)
        raise _RefusedPickle(
            f"Refusing to load {module}.{name}: a CIFAR-10 batch holds only "
            "numpy arrays, lists, bytes and str."
        )


_CIFAR_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    # Python 3 pickles bytes with these in protocols 0 to 2 (b"" with bytes()):
    # a batch pickled again with one of them was refused as foreign.
    ("_codecs", "encode"),
    ("__builtin__", "bytes"),
    ("builtins", "bytes"),
}


class _RefusedPickle(pickle.UnpicklingError):
    """A batch that asks for more than numpy arrays: refused, not corrupt."""


def _read_cifar_batch(path):
    """Read a pickled CIFAR-10 batch into images (n, 3, 32, 32) and labels."""
    with open(path, "rb") as f:
        try:
            # The batches were pickled by Python 2: its str are read as bytes.
            batch = _CifarUnpickler(f, encoding="bytes").load()
        # Not the file's damage: a refused class, or the system's trouble.
        except (_RefusedPickle, MemoryError, OSError):
            raise
        # Damaged bytes make the unpickler, or the constructors it calls,
        # raise nearly anything: EOFError and UnpicklingError, but also
        # UnicodeDecodeError, TypeError, AttributeError...
        except Exception as exc:
            raise _corrupt_file(path, exc) from exc
    if isinstance(batch, dict):
        # Python 2's str, the published batches' keys, are read as bytes; a
        # batch pickled again by Python 3 may have str keys.
        batch = {
            key.encode() if key in ("data", "labels") else key: value
            for key, value in batch.items()
        }
    try:
        data = np.asarray(batch[b"data"])
        labels = np.asarray(batch[b"labels"])
    # ValueError: ragged lists, which numpy cannot make an array of.
    except (TypeError, KeyError, ValueError) as exc:
        raise ValueError(
            f"{path} is not a CIFAR-10 batch: expected a dict with keys "
            f"b'data' and b'labels'; got {type(batch).__name__} ({exc!r}). "
            "The keys may also be str. Delete the file and fetch it again."
        ) from exc
    # The published batches hold bytes, and labels 0 to 9, as lists of ints.
    if (
        data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3 * 32 * 32
        or labels.ndim != 1
        or len(labels) != len(data)
        or not np.issubdtype(labels.dtype, np.integer)
        or (len(labels) and (labels.min() < 0 or labels.max() > 9))
    ):
        raise ValueError(
            f"{path} is not a CIFAR-10 batch: expected uint8 data of shape "
            f"(n, 3072) and n integer labels in 0..9; got {data.dtype} data of "
            f"shape {data.shape} and {labels.dtype} labels of shape "
            f"{labels.shape}. Delete the file and fetch it again."
        )
    labels = labels.astype(np.int64)
    return data.reshape(-1, 3, 32, 32), labels


def _find_cifar_batches(directory, names):
    """Return the paths of the batches ``names`` in ``directory``, or None."""
    for batch_dir in (directory / _CIFAR10_BATCH_DIR, directory):
        paths = [batch_dir / name for name in names]
        if all(path.is_file() for path in paths):
            return paths
    return None


def _extract_cifar_batches(archive, cache):
    """Extract the CIFAR-10 batches from ``archive`` into ``cache``.

    Only the batches themselves are extracted, each to a name built here
    rather than taken from the archive, so that no member can write outside
    ``cache`` however it is named.
    """
    batch_dir = cache / _CIFAR10_BATCH_DIR
    batch_dir.mkdir(parents=True, exist_ok=True)
    wanted = {
        f"{_CIFAR10_BATCH_DIR}/{name}": name
        for names in _CIFAR10_BATCHES.values()
        for name in names
    }
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = wanted.get(member.name)
                if name is None or not member.isfile():
                    continue
                with (
                    _atomic_file(batch_dir / name) as out,
                    tar.extractfile(member) as src,
                ):
                    shutil.copyfileobj(src, out, 1 << 20)
    # The tar or gzip stream cut short or damaged; the batches extracted
    # before the damage are whole, each written by _atomic_file.
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise _corrupt_file(archive, exc) from exc


def _check_archive_md5(archive):
    """Raise if ``archive`` is not the published CIFAR-10 archive."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(archive, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    checksum = digest.hexdigest()
    if checksum != _CIFAR10_MD5:
        raise _corrupt_file(
            archive,
            f"its MD5 checksum is {checksum}, expected {_CIFAR10_MD5}, the "
            "published archive's",
        )


@_fetcher_doc(_CIFAR10_FOLDER, (3, 32, 32), 50000, 10000, _CIFAR10_TARGET_NAMES)
def fetch_cifar10(
    *, data_home=None, subset="train", return_X_y=False, download_if_missing=True
):
    """Load the CIFAR-10 color images (classification, 10 classes).

    %(table)s

    The batches of the Python version (``data_batch_1`` to ``data_batch_5``
    and ``test_batch``) are looked for in the ``data_home`` argument, then in
    the ``SKAE_DATA`` directory (in each, in ``cifar-10/`` before the
    directory itself, extracted in ``cifar-10-batches-py/`` or not), then in
    the cache under :func:`get_data_home`. Failing that, they are extracted
    into the cache from ``cifar-10-python.tar.gz`` found in the same
    directories, or else downloaded (163 MiB) from the publisher; either
    way, the archive's MD5 checksum is verified first.

    %(parameters)s

    %(returns)s

    See Also
    --------
    fetch_mnist : Grayscale handwritten digits.

    Examples
    --------
    >>> from skae.datasets import fetch_cifar10
    >>> cifar = fetch_cifar10(subset="test")  # doctest: +SKIP
    >>> cifar.images.shape, cifar.target_names[:2]  # doctest: +SKIP
    ((10000, 3, 32, 32), ['airplane', 'automobile'])
    """
    subsets = _check_subset(subset)
    check_flag("return_X_y", return_X_y)
    check_flag("download_if_missing", download_if_missing)
    names = [name for s in subsets for name in _CIFAR10_BATCHES[s]]
    dirs = _search_dirs(data_home, _CIFAR10_FOLDER)
    cache = Path(_data_home_path(data_home)) / _CIFAR10_FOLDER
    paths = next((p for p in (_find_cifar_batches(d, names) for d in dirs) if p), None)
    if paths is None:
        archive = next(
            (d / _CIFAR10_ARCHIVE for d in dirs if (d / _CIFAR10_ARCHIVE).is_file()),
            None,
        )
        if archive is not None:
            # Verified as a download is: tarfile stops at the archive's end
            # marker, before the gzip trailer's CRC, so a damaged member
            # would otherwise be extracted, and cached, without a word.
            _check_archive_md5(archive)
            with _writing_into(cache, archive):
                _extract_cifar_batches(archive, cache)
        else:
            help_message = (
                f"CIFAR-10 needs the batches {', '.join(names)} (in "
                f"{_CIFAR10_BATCH_DIR}/ or not) or {_CIFAR10_ARCHIVE} in one "
                f"of these directories: {', '.join(map(str, dirs))}."
            )
            _check_download_allowed(
                download_if_missing, help_message, _CIFAR10_URL, cache
            )
            with _writing_into(cache):
                cache.mkdir(parents=True, exist_ok=True)
                # Into a folder of this call's own, removed once the batches
                # are extracted: the batches are all that is read, so 163 MiB
                # are not kept twice, and a concurrent fetch (the ranks of a
                # torchrun job) can neither remove the archive before it is
                # extracted nor take it for a local copy.
                with _part_dir(cache / _CIFAR10_ARCHIVE) as tmp:
                    archive = _download(
                        _CIFAR10_URL,
                        tmp / _CIFAR10_ARCHIVE,
                        _CIFAR10_MD5,
                        help_message,
                    )
                    _extract_cifar_batches(archive, cache)
        paths = _find_cifar_batches(cache, names)
        if paths is None:
            raise OSError(
                f"{archive} does not hold the CIFAR-10 batches "
                f"{', '.join(names)} under {_CIFAR10_BATCH_DIR}/."
            )
    batches = [_read_cifar_batch(path) for path in paths]
    images = np.concatenate([images for images, _ in batches])
    target = np.concatenate([labels for _, labels in batches])
    # Freed before the float32 data are computed: 147 MiB for the training set.
    del batches
    return _bunch(
        images,
        target,
        image_shape=(3, 32, 32),
        target_names=_CIFAR10_TARGET_NAMES,
        descr=_CIFAR10_DESCR,
        return_X_y=return_X_y,
    )


def _check_manifold_params(n_samples, n_features, noise, n_dims, manifold):
    def integer(value):
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)

    if not integer(n_samples) or n_samples < 1:
        raise ValueError(f"n_samples must be an integer >= 1; got {n_samples!r}.")
    if not integer(n_features) or n_features < n_dims:
        raise ValueError(
            f"n_features must be an integer >= {n_dims}, the dimension of the "
            f"{manifold} it embeds; got {n_features!r}."
        )
    if not isinstance(noise, numbers.Real) or not 0 <= noise < np.inf:
        raise ValueError(f"noise must be a finite number >= 0; got {noise!r}.")


def _embed(X, n_features, noise, rng):
    """Rotate ``X`` into ``n_features`` dimensions and add isotropic noise."""
    # The Q factor of a Gaussian matrix has orthonormal columns: a random
    # isometry, which keeps the shape of the data and hides its axes.
    basis, _ = np.linalg.qr(rng.standard_normal((n_features, X.shape[1])))
    return X @ basis.T + noise * rng.standard_normal((len(X), n_features))


@_fill_doc(manifold="moons", n_dims=2)
def make_embedded_moons(
    n_samples=1000, *, n_features=20, noise=0.05, random_state=None
):
    """Make two interleaving half circles hidden in many dimensions.

    The two moons of :func:`sklearn.datasets.make_moons`, curves in a plane,
    are rotated into ``n_features`` dimensions by a random orthogonal map,
    and Gaussian noise is added in every dimension. The data lie near a
    plane, so PCA with 2 components keeps them whole, but near a pair of
    curves in it: no single linear direction separates or orders them, while
    a nonlinear 1-D code can.

    Parameters
    ----------
    n_samples : int, default=1000
        The number of points, split evenly between the two moons.

    %(embedding)s

    y : ndarray of shape (n_samples,), dtype int64
        The moon of each point, 0 or 1.

    See Also
    --------
    make_embedded_swiss_roll : A 2-D sheet rolled in 3-D, embedded likewise.
    sklearn.datasets.make_moons : The moons in the plane.

    Examples
    --------
    >>> from sklearn.decomposition import PCA
    >>> from skae.datasets import make_embedded_moons
    >>> X, y = make_embedded_moons(n_samples=200, random_state=0)
    >>> X.shape, y.shape
    ((200, 20), (200,))
    >>> PCA().fit(X).explained_variance_ratio_[:3].round(2)
    array([0.79, 0.17, 0.  ])
    """
    _check_manifold_params(n_samples, n_features, noise, 2, "moons")
    rng = check_random_state(random_state)
    X, y = make_moons(n_samples, random_state=rng)
    return _embed(X, n_features, noise, rng), y


@_fill_doc(manifold="roll", n_dims=3)
def make_embedded_swiss_roll(
    n_samples=1000, *, n_features=20, noise=0.05, random_state=None
):
    """Make a swiss roll hidden in many dimensions.

    The roll of :func:`sklearn.datasets.make_swiss_roll`, a 2-D sheet rolled
    up in 3-D, is rotated into ``n_features`` dimensions by a random
    orthogonal map, and Gaussian noise is added in every dimension. PCA with
    2 components flattens the roll and loses a large part of the variance,
    while the data lie near a 2-D manifold that a nonlinear code can unroll.

    Parameters
    ----------
    n_samples : int, default=1000
        The number of points.

    %(embedding)s

    t : ndarray of shape (n_samples,), dtype float64
        The position of each point along the roll's spiral.

    See Also
    --------
    make_embedded_moons : Two curves in a plane, embedded likewise.
    sklearn.datasets.make_swiss_roll : The roll in 3-D.

    Examples
    --------
    >>> from sklearn.decomposition import PCA
    >>> from skae.datasets import make_embedded_swiss_roll
    >>> X, t = make_embedded_swiss_roll(n_samples=200, random_state=0)
    >>> pca = PCA(n_components=2).fit(X)
    >>> X.shape, round(float(pca.explained_variance_ratio_.sum()), 2)
    ((200, 20), 0.73)
    """
    _check_manifold_params(n_samples, n_features, noise, 3, "swiss roll")
    rng = check_random_state(random_state)
    X, t = make_swiss_roll(n_samples, random_state=rng)
    # scikit-learn's t is 0-d for one sample.
    return _embed(X, n_features, noise, rng), np.reshape(t, -1)
