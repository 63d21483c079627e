"""Writing files so that nothing is lost.

Every file lrpref writes goes first to a temporary file in the same folder, which is moved over the target
with ``os.replace`` only once it is complete. A write that fails or is killed half-way therefore leaves the
previous file byte-identical (``os.replace`` is atomic on POSIX and Windows when both paths are on one file
system, which a temporary file in the target's own folder guarantees).
"""
import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; when the block ends without an error, move it onto ``path``.

    Parameters
    ----------
    path : str or path
        The file to write. Its folder must exist. A symbolic link is followed: the file it points to is
        replaced and the link kept, as a plain ``open(path, "w")`` would.

    Yields
    ------
    pathlib.Path
        An empty temporary file in ``path``'s folder, for the caller to write (by name: h5py, Pillow, ...).
        If the block raises, the temporary file is removed and ``path`` is left as it was.

    Examples
    --------
    >>> with atomic_path("model.h5") as tmp:            # doctest: +SKIP
    ...     with h5py.File(tmp, "w") as f:
    ...         write(net, f)
    """
    given = Path(path)
    path = Path(os.path.realpath(given))   # through links: replacing the link itself would leave its target stale
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {str(given)!r}: the folder {str(folder)!r} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {str(given)!r}: it is a folder; expected a file name")
    # the real suffix last, so that writers choosing a format by it (Pillow) choose the target's
    try:
        descriptor, name = tempfile.mkstemp(dir=folder, prefix=f".{path.stem}.", suffix=f".part{path.suffix}")
    except OSError as err:   # e.g. a folder without write permission: name the file asked for, not the temporary
        raise OSError(err.errno, f"cannot write {str(given)!r}: {err.strerror}") from None
    os.close(descriptor)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:     # on disk before it replaces anything
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def refuse_overwriting(output, inputs):
    """Raise ``ValueError`` if ``output`` names the same existing file as one of ``inputs`` (None entries skipped).

    A command that wrote its result over one of its own inputs (``--image d.png --output d.png``) would destroy
    data it was given, so such a call is refused before any work.
    """
    for given in inputs:
        if given is not None and _same_file(output, given):
            raise ValueError(f"the output {str(output)!r} is also an input ({str(given)!r}): "
                             "writing it would destroy the input; choose another output path")


def _same_file(a, b):
    """Whether paths ``a`` and ``b`` name one existing file (links and other spellings included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:   # either is missing: no file to destroy
        return False


def _mode_for(path):
    """The permission bits a plain ``open(path, "w")`` would give: the old file's, else 0o666 less the umask."""
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
