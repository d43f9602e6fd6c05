"""Output files of the capture, with the rules of mfsim's own outputs (common/atomic_file.h):

- a symbolic link is followed to its target (the link stays; the target is replaced);
- a character device or a FIFO (/dev/null, a named pipe) is written through, in place;
- anything else is written whole to a temporary file beside its target and renamed over it, so
  a reader never sees half a file and a failed run leaves nothing behind;
- an output that is the same file as an input of the run (same device and inode, whatever the
  names), or as another output, is refused before any work starts.

Every problem is a CaptureError with one line naming the path.
"""

import os
import stat
import tempfile

from mfsim_torch.errors import CaptureError


def _target(path):
    return os.path.realpath(path)


def _written_through(st):
    return stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)


def check_output(path, option):
    """Raises CaptureError unless `path` can be written: a file in a writable directory, a
    character device or a FIFO. Probes the directory with a temporary file (removed at once)."""
    if not path:
        raise CaptureError("%s: expected a file name, got an empty one" % option)
    target = _target(path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise CaptureError("%s: cannot create file: %s" % (path, e.strerror))
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise CaptureError("%s: is a directory, expected a file" % path)
        if _written_through(st):
            if not os.access(target, os.W_OK):
                raise CaptureError("%s: cannot write file: Permission denied" % path)
            return
        if not stat.S_ISREG(st.st_mode):
            raise CaptureError("%s: cannot write here: not a regular file, character device or FIFO" % path)
    d = os.path.dirname(target)
    if not os.path.isdir(d):
        raise CaptureError("%s: cannot create file: no directory %s" % (path, os.path.dirname(os.path.abspath(path))))
    try:
        fd, probe = tempfile.mkstemp(prefix=os.path.basename(target) + ".tmp.", dir=d)
    except OSError as e:
        raise CaptureError("%s: cannot create file: %s" % (path, e.strerror))
    os.close(fd)
    os.unlink(probe)


def _identity(path):
    """(device, inode) of an existing file, else its absolute target path."""
    target = _target(path)
    try:
        st = os.stat(target)
        return (st.st_dev, st.st_ino)
    except OSError:
        return target


def check_distinct(outputs, inputs=()):
    """outputs: [(path, option)]; inputs: paths. Refuses an output that is the same file as an
    input or as an earlier output."""
    seen = {}
    ins = {}
    for p in inputs:
        if p and os.path.exists(p):
            ins.setdefault(_identity(p), p)
    for path, option in outputs:
        ident = _identity(path)
        if ident in ins:
            raise CaptureError("%s: is the same file as the input %s; refusing to overwrite an input" % (path, ins[ident]))
        if ident in seen and not (isinstance(ident, tuple) and _written_through(os.stat(_target(path)))):
            raise CaptureError("%s (%s): is the same file as the output %s (%s); name each output once"
                               % (path, option, seen[ident][0], seen[ident][1]))
        seen.setdefault(ident, (path, option))


def loaded_module_files():
    """The source files of every loaded Python module: inputs of the run (a user's model among them)."""
    import sys
    files = []
    for m in list(sys.modules.values()):
        f = getattr(m, "__file__", None)
        if isinstance(f, str):
            files.append(f)
    return files


def _file_mode():
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_all(outputs):
    """outputs: [(path, bytes)]. Stages every regular file as a temporary file, then renames them
    all; devices and FIFOs are written last, in place. On any error the temporary files are
    removed and a CaptureError names the path."""
    staged = []   # (tmp, target, path)
    through = []  # (target, path, data)
    try:
        for path, data in outputs:
            target = _target(path)
            try:
                st = os.stat(target)
            except FileNotFoundError:
                st = None
            if st is not None and _written_through(st):
                through.append((target, path, data))
                continue
            try:
                fd, tmp = tempfile.mkstemp(prefix=os.path.basename(target) + ".tmp.", dir=os.path.dirname(target))
            except OSError as e:
                raise CaptureError("%s: cannot create file: %s" % (path, e.strerror))
            staged.append((tmp, target, path))
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.chmod(tmp, _file_mode())
            except OSError as e:
                raise CaptureError("%s: cannot write file: %s" % (path, e.strerror))
        for tmp, target, path in staged:
            try:
                os.replace(tmp, target)
            except OSError as e:
                raise CaptureError("%s: cannot write file: %s" % (path, e.strerror))
        for target, path, data in through:
            try:
                with open(target, "wb") as f:
                    f.write(data)
            except OSError as e:
                raise CaptureError("%s: cannot write file: %s" % (path, e.strerror))
    finally:
        for tmp, _, _ in staged:
            if os.path.lexists(tmp):
                os.unlink(tmp)
