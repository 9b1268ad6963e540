"""RE-Bench session runner.

The runner is the source of truth for one timed session on one machine: when the session started,
its deadline and pauses, and the score log. The VS Code extension and organisers talk to it through
its command line and its `serve` channel (see environments/README.md). Python 3.8+ standard library
only, POSIX only. The build (scripts/build-runner.py) makes one file of this package, runner.pyz.
"""

RUNNER_VERSION = "1.1.0"


def _load_modules_once():
    """Imports this package's modules from runner.pyz reading each once: zipimport (3.8-3.12) reads and
    unmarshals a module's code twice (once to name its file, once to run it) and opens the archive for each
    read, a few ms of every command's start-up. Only the archive's bytecode for this very Python is used;
    anything else (another Python, a module without bytecode) is left to zipimport."""
    import sys

    archive_loader = globals().get("__loader__")
    if type(archive_loader).__name__ != "zipimporter":
        return  # the package folder: the normal import system already reads __pycache__ once
    try:
        from _frozen_importlib_external import MAGIC_NUMBER  # loaded with the interpreter: no file is read
    except ImportError:
        return
    prefix = __name__ + "."
    folder = archive_loader.archive + "/" + __name__ + "/"
    ModuleSpec = type(__spec__)

    class Loader(object):
        @classmethod
        def find_spec(cls, fullname, path=None, target=None):
            if not fullname.startswith(prefix) or "." in fullname[len(prefix):]:
                return None
            try:
                data = archive_loader.get_data(folder + fullname[len(prefix):] + ".pyc")
            except OSError:
                return None
            # A hash-based pyc that is never checked against its source (scripts/build-runner.py).
            if data[:4] != MAGIC_NUMBER or data[4:8] != b"\x01\x00\x00\x00":
                return None
            spec = ModuleSpec(fullname, cls, origin=folder + fullname[len(prefix):] + ".py")
            spec.has_location = True
            spec.loader_state = data
            return spec

        @staticmethod
        def create_module(spec):
            return None

        @staticmethod
        def exec_module(module):
            import marshal

            code = marshal.loads(memoryview(module.__spec__.loader_state)[16:])
            module.__spec__.loader_state = None
            exec(code, module.__dict__)

        @staticmethod
        def get_data(path):
            return archive_loader.get_data(path)

        @staticmethod
        def get_source(fullname):
            return archive_loader.get_source(fullname)

    sys.meta_path.insert(0, Loader)


_load_modules_once()
